"""The caseworkers' console (department clients): start a request from one member's ID number (一证通办: the
household's members are filled in from household registration), attach each member's signed authorization, follow
the request, and read and print the record as the access policy cuts it for the department and purpose.

The applicant's signed form, given with the lookup, is checked (a PDF, JPEG or PNG, 1 KiB to 5 MiB, whose bytes
are what its type says) and kept encrypted (hub.services.lookup); the other members' forms are hashed in the hub and not
kept: the department keeps the paper, the hub their SHA-256. ID numbers travel in form bodies only, never in an
address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from consent.authorizations import adult_from
from consent.preview import refusals
from core.ids import HEX32, HOUSEHOLD
from core.settings import settings
from core.store import utcnow
from hub.services import clients, lookup
from hub.services.errors import Invalid, NotFound
from hub.services.lookup import FORM_MAX_BYTES, SignedForm
from hub.services.cases import case_head
from hub.services.reads import read_record
from hub.services.requests import create, department_requests, request_progress, trigger_verification
from hub.services.residents import invitation_links
from hub.web.console import follow
from hub.web.console.pages import SOURCES, TEXT, console_role, lang_of, page, secured
from hub.web.console.record import record_view
from schemas.codes import birth_date_from_id
from schemas.vocabulary import FINANCIAL_SOURCES, PURPOSES, STATUS_NAMES

router = APIRouter(prefix="/console", include_in_schema=False)
Caseworker = Annotated[clients.Client, Depends(console_role("department"))]
MAX_FORM = 10 * 1024 * 1024  # one signed form (a scan or a PDF)

TEXT.update({
    "id_number": ("身份证号", "ID number"),
    "name": ("姓名", "Name"),
    "relation": ("与户主关系", "Relation to the head"),
    "birth_date": ("出生日期", "Birth date"),
    "member_status": ("户籍状态", "Registration status"),
    "include": ("纳入核对", "Include"),
    "signed_form": ("签字授权书（扫描件）", "Signed authorization form (scan)"),
    "fin_form": ("金融信息查询授权书（可选）", "Financial information consent form (optional)"),
    "guardian": ("监护人（代为授权）", "Guardian (signs for the minor)"),
    "applicant_id": ("申请人身份证号", "Applicant's ID number"),
    "applicant_form": ("申请人签字授权书", "Applicant's signed authorization form"),
    "lookup": ("查询家庭成员", "Look up the household"),
    "lookup_help": ("输入一名家庭成员的身份证号并上传其签字授权书，系统从公安户籍获取全部家庭成员（一证通办）；"
                    "授权书加密留存，每次查询均记入审计台账。",
                    "Enter one member's ID number and attach their signed authorization form: the household's members "
                    "come from household registration. The form is kept encrypted; every lookup is in the audit "
                    "ledger."),
    "members_found": ("户籍登记的家庭成员", "Members registered in the household"),
    "check_members": ("请核对家庭成员，为每名成年成员上传其签字授权书；未成年人由监护人代为授权。",
                      "Check the members and attach each adult member's signed form; a guardian signs for a minor."),
    "sources_to_check": ("核对事项", "Sources to check"),
    "valid_days": ("授权有效期（天）", "Authorization valid for (days)"),
    "recheck_days": ("复核间隔（天）", "Re-check interval (days)"),
    "data_life": ("原始数据保存期（天）", "Raw data kept for (days)"),
    "submit_request": ("提交核对委托", "Submit the request"),
    "submit_mobile": ("改为成员手机签署（码上办）并提交", "Submit: members sign on their phones instead"),
    "mobile_note": ("成员也可以不交纸质授权书，而在手机上用“统一身份认证”登录后签署：提交后，每位成员会得到本人的二维码和链接，"
                    "全部成员答复后核对自动开始。",
                    "Instead of paper forms, members can sign on their phones after signing in with the government "
                    "identity service: once submitted, each member gets their own QR code and link, and the "
                    "verification starts when every member has answered."),
    "lookup_failed": ("查询失败", "Lookup failed"),
    "not_registered": ("公安户籍中未找到此人。", "Household registration does not know this person."),
    "unavailable": ("公安户籍系统暂不可用，请稍后再试。", "Household registration is unavailable; try again later."),
    "form_rules": ("须为PDF、JPEG或PNG文件，大小1 KB至5 MB，且文件内容与其类型相符",
                   "a PDF, JPEG or PNG file of 1 KB to 5 MB whose content is what its type says"),
    "lookup_over_limit": ("本部门一小时内的户籍成员查询已达上限（{limit}次），请在{minutes}分钟后再试。",
                            "This department has made its {limit} household lookups of the past hour; try again in "
                            "{minutes} minutes."),
    "request": ("核对委托", "Request"),
    "source_status": ("各数据来源", "Sources"),
    "reason_col": ("说明", "Reason"),
    "read_record": ("查看核对报告", "Read the record"),
    "not_published": ("核对报告尚未出具。", "The record is not published yet."),
    "record": ("家庭经济状况核对报告", "Household economic status record"),
    "division": ("户籍所在地", "Registered in"),
    "version": ("版本", "Version"),
    "as_of": ("核对时点", "As of"),
    "screening": ("救助资格初筛", "Screening"),
    "answer": ("结论", "Answer"),
    "income": ("收入", "Income"),
    "per_capita": ("月人均收入（元）", "Monthly income per capita (yuan)"),
    "total_monthly": ("家庭月收入（元）", "Household monthly income (yuan)"),
    "assets": ("财产", "Assets"),
    "financial_pc": ("人均金融资产（元）", "Financial assets per capita (yuan)"),
    "properties": ("住房套数", "Residential properties"),
    "area_pc": ("人均住房面积（㎡）", "Housing area per capita (m²)"),
    "cars": ("机动车", "Cars"),
    "entities": ("市场主体", "Market entities"),
    "members": ("家庭成员", "Members"),
    "age": ("年龄", "Age"),
    "discrepancies": ("数据不一致（需人工复核）", "Discrepancies (to review)"),
    "completeness": ("数据来源完整性", "Sources' completeness"),
    "print_hint": ("使用浏览器的打印功能（Ctrl+P）打印本报告。", "Use the browser's print (Ctrl+P) to print this record."),
    "not_entitled": ("本部门无权以该用途查阅此家庭的核对报告（无有效委托或救助记录）。",
                     "This department may not read this household's record for that purpose (no open case)."),
    "signature_note": ("本页内容由核对平台签名（Ed25519），与平台公布的报告一致。",
                       "This content is signed by the hub (Ed25519) and matches the published record."),
    "rules": ("适用标准", "Rules"),
    "no_requests": ("暂无核对委托。", "No requests yet."),
    "form_problem": ("请修正以下问题：", "Please correct:"),
    "policy_rule": ("查阅范围", "Access rule"),
})


@router.get("/requests", response_class=HTMLResponse)
def requests_page(request: Request, client: Caseworker,
                  before: Annotated[str | None, Query(pattern=HEX32)] = None) -> HTMLResponse:
    rows = department_requests(client.department, before=before, limit=50)
    return page(request, "case_requests.html", client=client, rows=rows, more=len(rows) == 50)


@router.get("/requests/new", response_class=HTMLResponse)
def new_request_page(request: Request, client: Caseworker) -> HTMLResponse:
    return page(request, "case_new.html", client=client, purposes=list(PURPOSES), error=None, form={})


def _signed_form(upload):
    """The applicant's uploaded form as hub.services.lookup takes it (its type as the browser declares it), or None. A file
    over the bound is read one byte past it: the lookup refuses its size."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    media_type = (upload.content_type or "").split(";")[0].strip().lower()
    return SignedForm(media_type=media_type, content=upload.file.read(FORM_MAX_BYTES + 1))


# what a refused lookup's field is called on the form
LOOKUP_FIELDS = {"id_number": "applicant_id", "purpose": "purpose", "case_ref": "case_ref"}


# --- the members/forms step (step 2) -------------------------------------------------------------------------------
TEXT.update({
    "fin_form_adult": ("金融信息查询授权书（单独签署）", "Financial information consent form (signed separately)"),
    "fin_form_minor": ("金融信息查询授权书（监护人代签；未上传时适用监护人的授权书）",
                       "Financial information consent form (signed by the guardian; if none, the guardian's own "
                       "applies)"),
    "fin_sources_note": ("※ 银行、证券等金融信息须成员另行签署金融信息查询授权书（《个人信息保护法》第二十九条）；"
                         "未成年人适用其监护人的授权书。",
                         "※ Financial sources need each member's separate financial consent form (PIPL Art. 29); a "
                         "minor is covered by their guardian's."),
    "needs_fin_consent": ("需金融授权", "financial consent"),
    "uploaded": ("已上传 ✓", "Uploaded ✓"),
    "replace_file": ("更换文件", "Replace the file"),
    "check_forms": ("检查授权情况", "Check the forms"),
    "members_none": ("请至少勾选一名家庭成员纳入核对。", "Include at least one member."),
    "sources_none": ("请至少勾选一项核对事项。", "Choose at least one source to check."),
    "err_form_missing": ("成年成员须上传本人签字的授权书，否则无法纳入核对（家庭人均收入将按少算的人数计算）。",
                         "An adult member must sign their own form: without it they cannot be included (income per "
                         "person would be computed on fewer people)."),
    "err_form_large": ("文件超过10 MB，请上传较小的扫描件。", "The file is larger than 10 MB; attach a smaller scan."),
    "err_not_living": ("该成员户籍状态为“{status}”，不能纳入核对，请取消勾选。",
                       "This member's registration status is \"{status}\": they cannot be included; untick them."),
    "err_guardian_choose": ("请为未成年人选择监护人（须为纳入核对的成年成员）。",
                            "Choose the minor's guardian (an included adult member)."),
    "err_guardian_excluded": ("所选监护人未纳入核对，请勾选该监护人或选择其他监护人。",
                              "The chosen guardian is not included: include them or choose another guardian."),
    "err_guardian_unsigned": ("所选监护人尚未上传本人签字的授权书。",
                              "The chosen guardian has not attached their own signed form yet."),
    "will_refuse": ("将不予查询", "Will be refused"),
    "refusal_FINANCIAL_CONSENT_MISSING": ("缺少金融信息查询授权书（本人的，或未成年人监护人的）",
                                          "no financial consent form (their own, or a minor's guardian's)"),
    "refusal_ADULT_WITHOUT_OWN_CONSENT": ("成年人未上传本人签字的授权书", "an adult without their own signed form"),
    "refusal_MINOR_WITHOUT_GUARDIAN": ("未成年人没有已签字授权的监护人", "a minor without a guardian who signed"),
    "refusal_MEMBER_NOT_NAMED": ("该成员未授权", "the member gave no authorization"),
    "refusal_SOURCE_NOT_IN_SCOPE": ("该成员未授权此项", "the member did not authorize this source"),
    "refusal_other": ("授权不适用", "the authorization does not apply"),
    "refusals_title": ("以下查询将被拒绝：这些成员的相应数据不会被查询，核对报告将标明相应来源不完整、需人工复核。",
                       "These fetches will be refused: those members' data is not asked for, and the record will say "
                       "those sources are incomplete (to review)."),
    "accept_refusals": ("我已知晓上述查询将被拒绝，仍然提交", "I understand these fetches will be refused; submit anyway"),
    "err_accept": ("请补充金融信息查询授权书，或确认接受上述拒绝后再提交。",
                   "Attach the financial consent forms, or confirm that you accept these refusals, then submit."),
    "forms_ok": ("授权齐全：提交后各成员的全部核对事项均可查询。",
                 "The forms are complete: every source can be asked for every member."),
    "request_refused": ("核对平台未受理此委托，请核对成员信息与授权书后重试。",
                        "The hub did not accept the request; check the members and forms and try again."),
    "problems_count": ("请修正以下 {n} 处问题（见各成员所在行）：", "Please correct these problems ({n}), on the members' rows:"),
})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ROW_FIELDS = ("id", "name", "relation", "status")


@dataclass
class MemberRow:
    """One member's row of the forms step, as the page shows it and as the caseworker left it: what registration
    said of them, whether they are included, the forms attached (SHA-256 only: the hub keeps no other member's form),
    the guardian chosen, and the messages next to its fields."""

    k: int
    id_number: str
    name: str
    relation: str
    status: str
    adult: bool
    age: int | None
    applicant: bool = False
    included: bool = False
    evidence: str | None = None  # the applicant's form, kept by the lookup
    form_sha256: str | None = None
    fin_sha256: str | None = None
    guardian: str = ""  # the row number (k) of the chosen guardian
    errors: dict[str, str] = field(default_factory=dict)  # field -> message, in the user's language
    refused: list[tuple[str, list[str]]] = field(default_factory=list)  # (why, the sources' names)

    @property
    def living(self) -> bool:
        return self.status == "normal"

    @property
    def own_form(self) -> str | None:
        return self.evidence or self.form_sha256


def _adult(id_number: str, on: dt.date) -> bool:
    """Adult as the authorization's check and the gate count it (18 on the day the authorization starts)."""
    try:
        return adult_from(id_number) <= on
    except ValueError:  # not an ID number: intake names it
        return True


def _birth(id_number: str) -> dt.date | None:
    try:
        return birth_date_from_id(id_number)
    except ValueError:
        return None


def _hash_field(value) -> str | None:
    value = str(value or "").strip().lower()
    return value if _HEX64.fullmatch(value) else None


def _sha256(upload) -> str | None:
    """The SHA-256 of an uploaded form (None when no file was chosen); ValueError beyond MAX_FORM."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = upload.file.read(MAX_FORM + 1)
    if not data:
        return None
    if len(data) > MAX_FORM:
        raise ValueError("form_too_large")
    return hashlib.sha256(data).hexdigest()


def _rows_from_form(form, today: dt.date) -> list[MemberRow]:
    """The rows as the caseworker submitted them; a new upload replaces a form kept from an earlier submit."""
    count = min(_whole(str(form.get("count", ""))) or 0, 20)
    rows = []
    for k in range(count):
        idn, name, relation, status_ = (str(form.get(f"m{k}_{f}", "")).strip() for f in _ROW_FIELDS)
        idn = idn.upper()
        born = _birth(idn)
        row = MemberRow(k=k, id_number=idn, name=name, relation=relation, status=status_ or "normal",
                        adult=_adult(idn, today), age=_age(born, today) if born else None,
                        applicant=bool(form.get(f"m{k}_applicant")), included=form.get(f"m{k}_include") == "on",
                        evidence=_hash_field(form.get(f"m{k}_evidence")),
                        form_sha256=_hash_field(form.get(f"m{k}_form_sha256")),
                        fin_sha256=_hash_field(form.get(f"m{k}_fin_sha256")),
                        guardian=str(form.get(f"m{k}_guardian", "")))
        for name_, attr in (("form", "form_sha256"), ("fin_form", "fin_sha256")):
            try:
                sha = _sha256(form.get(f"m{k}_{name_}"))
            except ValueError:
                row.errors[name_] = "err_form_large"
            else:
                if sha:
                    setattr(row, attr, sha)
        rows.append(row)
    return rows


def check_rows(rows: list[MemberRow]) -> None:
    """The blocking problems of the forms step, as message keys on each row's field (``row.errors``): a member who
    is not living included, an included adult without their own form, a minor without an included adult guardian
    who signed. Nothing is dropped silently: a member either is included with what the gate needs or is not."""
    by_k = {str(r.k): r for r in rows}
    for r in rows:
        if not r.included:
            r.errors.pop("form", None)  # an excluded member's form is not asked for
            continue
        if not r.living:
            r.errors["include"] = "err_not_living"
        elif r.adult:
            if not r.own_form and "form" not in r.errors:
                r.errors["form"] = "err_form_missing"
        else:
            g = by_k.get(r.guardian)
            if g is None or g is r or not g.adult or not g.living:
                r.errors["guardian"] = "err_guardian_choose"
            elif not g.included:
                r.errors["guardian"] = "err_guardian_excluded"
            elif not g.own_form:
                r.errors["guardian"] = "err_guardian_unsigned"


def consents_of(rows: list[MemberRow], sources: list[str]) -> list[dict]:
    """The authorization's consents for the included members. An adult's own form; a minor covered by the guardian
    chosen. The financial consent is the member's own separate form, or, for a minor without one, the guardian's:
    the guardian signs the financial consent for the minors they sign for (gate: the minor's financial_sources).
    A member whose forms are missing is still listed (without evidence): the preview names what the gate will
    refuse them, and check_rows keeps such a draft from being submitted."""
    by_k = {str(r.k): r for r in rows}
    fin_sources = [s for s in sources if s in FINANCIAL_SOURCES]
    consents = []
    for r in rows:
        if not r.included:
            continue
        consent: dict = {"id_number": r.id_number, "sources": list(sources)}
        guardian = by_k.get(r.guardian) if not r.adult else None
        if r.own_form:  # an adult's; a minor's own (an applicant under 18) still needs the guardian's cover
            consent["evidence_sha256"] = r.own_form
        if guardian is not None and guardian is not r:
            consent["guardian_id_number"] = guardian.id_number
        fin = r.fin_sha256 or (guardian.fin_sha256 if guardian is not None and guardian.included else None)
        if fin and fin_sources:
            consent["financial_consent"] = {"sources": fin_sources, "evidence_sha256": fin}
        consents.append(consent)
    return consents


def preview_refusals(rows: list[MemberRow], sources: list[str], moment: dt.datetime) -> dict[int, dict[str, str]]:
    """Row number -> {source: the gate's reason code} for what the gate will refuse each included member, by the
    gate's own rules (consent.preview) on the draft authorization the submit would make."""
    doc = {"valid_from": moment.isoformat(), "valid_until": (moment + dt.timedelta(days=1)).isoformat(),
           "consents": consents_of(rows, sources)}
    included = [r for r in rows if r.included]
    found = refusals(doc, [r.id_number for r in included], sources, moment)
    return {r.k: {s: reason.value for s, reason in found.get(r.id_number, {}).items()} for r in included}


def _fingerprint(refused: dict[int, dict[str, str]]) -> str:
    """What the caseworker accepted, as a digest of the row numbers, sources and reasons: accepting holds for exactly
    the refusals shown, and the page carries no code."""
    text = ",".join(f"{k}:{s}:{why}" for k, by in sorted(refused.items()) for s, why in sorted(by.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _members_page(request: Request, client, *, rows: list[MemberRow], purpose: str, case_ref: str,
                  chosen: list[str], days: dict[str, str], status_code: int = 200, error: str | None = None,
                  refused: dict[int, dict[str, str]] | None = None, checked: bool = False) -> HTMLResponse:
    i = 1 if lang_of(request) == "en" else 0
    names = {s: SOURCES[s][i] for s in SOURCES}
    refused = refused or {}
    for r in rows:
        grouped: dict[str, list[str]] = {}
        for s, why in refused.get(r.k, {}).items():
            key = f"refusal_{why}" if f"refusal_{why}" in TEXT else "refusal_other"
            grouped.setdefault(TEXT[key][i], []).append(names.get(s, s))
        r.refused = list(grouped.items())
    messages = {r.k: {f: TEXT[key][i].format(status=STATUS_NAMES.get(r.status, (r.status,) * 2)[i])
                      for f, key in r.errors.items()} for r in rows}
    problems = sum(len(m) for m in messages.values())
    return page(request, "case_members.html", status_code=status_code, client=client, purpose=purpose,
                case_ref=case_ref, rows=rows, messages=messages, problems=problems,
                adults=[r for r in rows if r.adult and r.living], sources=list(SOURCES), chosen=set(chosen),
                financial=tuple(FINANCIAL_SOURCES), days=days, error=error,
                any_refused=any(refused.values()), fingerprint=_fingerprint(refused), checked=checked)


DAYS = {"valid_days": (365, 1095), "recheck_days": (90, 365), "data_life": (30, 365)}  # field: (default, top)


@router.post("/requests/lookup", response_class=HTMLResponse)
async def lookup_members(request: Request, client: Caseworker) -> HTMLResponse:
    """Step 1: one member's ID number, the case number and that member's signed form (kept, encrypted) -> the
    household's members from household registration. Every lookup, refused or not, is a ledger entry."""
    form = await request.form(max_files=4, max_fields=20, max_part_size=MAX_FORM)
    purpose, case_ref = str(form.get("purpose", "")), str(form.get("case_ref", "")).strip()
    back = {"purpose": purpose, "case_ref": case_ref}
    i = 1 if lang_of(request) == "en" else 0
    signed = _signed_form(form.get("applicant_form"))
    retry_after = None
    try:
        members = lookup.household_members(str(form.get("id_number", "")), department=client.department,
                                           client_id=client.id, purpose=purpose, case_ref=case_ref,
                                           signed_form=signed)
    except lookup.BadLookup as exc:
        if exc.field in LOOKUP_FIELDS:
            error = f"{TEXT['form_problem'][i]} {TEXT[LOOKUP_FIELDS[exc.field]][i]}"
        else:  # the signed form (missing, of another type or size, not what its type says)
            error = f"{TEXT['form_problem'][i]} {TEXT['applicant_form'][i]}: {TEXT['form_rules'][i]}"
        code = 422
    except lookup.RateLimited as exc:
        error = TEXT["lookup_over_limit"][i].format(limit=exc.limit, minutes=max(1, math.ceil(exc.retry_after / 60)))
        code, retry_after = 429, exc.retry_after
    except lookup.NotRegistered:
        error, code = TEXT["not_registered"][i], 404
    except lookup.LookupUnavailable:
        error, code = TEXT["unavailable"][i], 503
    else:
        applicant = str(form.get("id_number", "")).strip().upper()
        today = utcnow().date()
        rows = [MemberRow(k=k, id_number=m.id_number, name=m.name, relation=m.relation, status=m.status,
                          adult=_adult(m.id_number, today), age=_age(m.birth_date, today),
                          applicant=m.id_number == applicant, included=m.status == "normal",
                          evidence=signed.sha256 if m.id_number == applicant else None)
                for k, m in enumerate(members)]
        return _members_page(request, client, rows=rows, purpose=purpose, case_ref=case_ref, chosen=list(SOURCES),
                             days={f: str(d) for f, (d, _) in DAYS.items()})
    resp = page(request, "case_new.html", status_code=code, client=client, purposes=list(PURPOSES), form=back,
                error=error)
    if retry_after is not None:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


def _whole(text: str) -> int | None:
    """A form's whole number: ASCII digits ("²".isdigit() holds too, int() refuses it), not beyond what int() reads."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


@router.post("/requests")
async def submit_request(request: Request, client: Caseworker) -> Response:
    """Step 2: the checked members, each adult's signed form (a guardian's for a minor), the sources -> a request
    with its authorization; verification starts when the hub runs with Airflow.

    Before anything is made, the forms are checked member by member (check_rows) and the gate's refusals previewed
    (preview_refusals); any problem brings the members page back with every field as it was left, the forms already
    attached kept as their SHA-256, and the messages next to the fields they are about."""
    form = await request.form(max_files=60, max_fields=400, max_part_size=MAX_FORM)
    i = 1 if lang_of(request) == "en" else 0
    now = utcnow()
    purpose, case_ref = str(form.get("purpose", "")), str(form.get("case_ref", "")).strip()
    sources = [s for s in form.getlist("sources") if s in SOURCES]
    days = {f: str(form.get(f, "")).strip()[:9] for f in DAYS}
    rows = _rows_from_form(form, now.date())
    if form.get("action") == "mobile":
        return _submit_mobile(request, client, rows, purpose=purpose, case_ref=case_ref, sources=sources, days=days)
    check_rows(rows)
    errors = [TEXT["members_none"][i]] if not any(r.included for r in rows) else []
    if not sources:
        errors.append(TEXT["sources_none"][i])
    refused = preview_refusals(rows, sources, now)
    # A missing financial consent warns, it does not block: the separate consent to sensitive data is the member's
    # own choice (PIPL Art. 29) and may lawfully be withheld while the rest is given, and the request is still worth
    # making for the other sources. But the household's assessment cannot be complete without it, so the
    # caseworker must see which members' financial sources will be refused and accept exactly that before submit
    # (the record then says those sources are refused and the answer needs review).
    accepted = form.get("accept_refusals") == "on" and form.get("refusals_shown") == _fingerprint(refused)
    blocking = errors or any(r.errors for r in rows)
    if form.get("action") == "check" or blocking or (any(refused.values()) and not accepted):
        if not blocking and any(refused.values()) and form.get("action") != "check":
            errors.append(TEXT["err_accept"][i])
        code = 200 if form.get("action") == "check" and not blocking else 422
        return _members_page(request, client, rows=rows, purpose=purpose, case_ref=case_ref, chosen=sources,
                             days=days, status_code=code, error=" ".join(errors) or None, refused=refused,
                             checked=True)

    included = [r for r in rows if r.included]
    doc = {"purpose": purpose, "case_ref": case_ref, "sources": sources,
           "members": [{"id_number": r.id_number, "name": r.name, "relation": r.relation} for r in included],
           "authorization": {"valid_from": now.isoformat(),
                             "valid_until": (now + dt.timedelta(days=_whole_days(days, "valid_days"))).isoformat(),
                             "recheck_interval_days": _whole_days(days, "recheck_days"),
                             "data_life_days": _whole_days(days, "data_life"), "consents": consents_of(rows, sources)}}
    try:
        request_id = create(doc, department=client.department, client_id=client.id)
    except Invalid as exc:
        # what the forms step does not check itself (e.g. the case number): the problems name fields, never values,
        # in English; a Chinese page says it in Chinese and keeps them out
        error = TEXT["request_refused"][i] + ("" if i == 0 else " (" + "; ".join(exc.problems) + ")")
        return _members_page(request, client, rows=rows, purpose=purpose, case_ref=case_ref, chosen=sources,
                             days=days, status_code=422, error=error, refused=refused, checked=True)
    trigger_verification(request_id)
    return secured(RedirectResponse(f"/console/requests/{request_id}", status_code=status.HTTP_303_SEE_OTHER),
                   request)


def _whole_days(days: dict, name: str) -> int:
    default, top = DAYS[name]
    v = _whole(days[name])
    return min(max(v, 1), top) if v is not None else default


def _submit_mobile(request: Request, client, rows: list[MemberRow], *, purpose: str, case_ref: str,
                   sources: list[str], days: dict) -> Response:
    """The members sign on their phones (码上办) instead of on paper: no forms are asked for; the request waits for
    their signatures, and its page shows each member's QR code and link."""
    i = 1 if lang_of(request) == "en" else 0
    for r in rows:
        if r.included and not r.living:
            r.errors["include"] = "err_not_living"
    errors = [TEXT["members_none"][i]] if not any(r.included for r in rows) else []
    if not sources:
        errors.append(TEXT["sources_none"][i])
    doc = {"purpose": purpose, "case_ref": case_ref, "sources": sources,
           "members": [{"id_number": r.id_number, "name": r.name, "relation": r.relation} for r in rows if r.included],
           "mobile_signing": {"valid_days": _whole_days(days, "valid_days"),
                              "recheck_interval_days": _whole_days(days, "recheck_days"),
                              "data_life_days": _whole_days(days, "data_life")}}
    request_id = None
    if not errors and not any(r.errors for r in rows):
        try:
            request_id = create(doc, department=client.department, client_id=client.id)
        except Invalid as exc:
            errors.append(TEXT["request_refused"][i] + ("" if i == 0 else " (" + "; ".join(exc.problems) + ")"))
    if request_id is None:
        return _members_page(request, client, rows=rows, purpose=purpose, case_ref=case_ref, chosen=sources,
                             days=days, status_code=422, error=" ".join(errors) or None, refused={}, checked=True)
    return secured(RedirectResponse(f"/console/requests/{request_id}", status_code=status.HTTP_303_SEE_OTHER),
                   request)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, client: Caseworker,
                 request_id: Annotated[str, PathParam(pattern=HEX32)]) -> HTMLResponse:
    """The request as it goes: each source's progress, the stage and what happens next, reloading itself until it
    is finished; once published, the screening answers (a read of the record, logged as any) and the record's link."""
    progress = request_progress(request_id, client.department)  # NotFound (404) unless the department's own
    screening = None
    if progress.stage == "published" and progress.request.household_id:
        try:
            rec = read_record(progress.request.household_id, progress.request.purpose, None, client)
            screening = (rec.content.get("assessment") or {}).get("screening") or None
        except NotFound:  # not entitled to the record now: the link's page says so
            screening = None
    return page(request, "case_request.html", client=client, screening=screening, invitations=_invitations(request_id,
                client.department), **follow.context(progress, lang_of(request)))


def _invitations(request_id: str, department: str) -> list[dict]:
    """The members' signing links (码上办) with their QR codes (inline SVG: nothing fetched), at the hub's public
    address (HUB_API_URL), for a request made with mobile signing; empty otherwise."""
    import segno

    base = settings().api_url.rstrip("/")
    return [{"inv": i, "url": base + i.path, "qr": segno.make(base + i.path, error="m").svg_inline(scale=3)}
            for i in invitation_links(request_id, department)]


@router.get("/households/{household_id}/record", response_class=HTMLResponse)
def record_page(request: Request, client: Caseworker,
                household_id: Annotated[str, PathParam(pattern=HOUSEHOLD)],
                purpose: Annotated[str, Query(max_length=32)]) -> HTMLResponse:
    """The record as the access policy cuts it for this department and purpose; printable."""
    if purpose not in PURPOSES:
        raise HTTPException(422, "purpose: unknown")
    try:
        rec = read_record(household_id, purpose, None, client)
    except NotFound:  # not entitled, or no record: the same page
        return page(request, "case_record.html", status_code=404, client=client, rec=None, purpose=purpose)
    case = case_head(client.department, household_id, purpose)
    view = record_view(rec.content, lang_of(request), case=case, department=client.department, purpose=purpose)
    return page(request, "case_record.html", client=client, rec=rec, v=view, purpose=purpose)
