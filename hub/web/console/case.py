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
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from core.ids import HEX32, HOUSEHOLD
from core.store import utcnow
from hub.services import clients, lookup
from hub.services.errors import Invalid, NotFound
from hub.services.lookup import FORM_MAX_BYTES, SignedForm
from hub.services.reads import read_record
from hub.services.requests import create, department_requests, request_view, trigger_verification
from hub.web.console.pages import SOURCES, TEXT, console_role, lang_of, page, secured
from schemas.vocabulary import FINANCIAL_SOURCES, PURPOSES

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
    "lookup_failed": ("查询失败", "Lookup failed"),
    "not_registered": ("公安户籍中未找到此人。", "Household registration does not know this person."),
    "unavailable": ("公安户籍系统暂不可用，请稍后再试。", "Household registration is unavailable; try again later."),
    "form_rules": ("须为PDF、JPEG或PNG文件，大小1 KB至5 MB，且文件内容与其类型相符",
                   "a PDF, JPEG or PNG file of 1 KB to 5 MB whose content is what its type says"),
    "lookup_rate_limited": ("本部门一小时内的户籍成员查询已达上限（{limit}次），请在{minutes}分钟后再试。",
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


def _sha256(upload) -> str | None:
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = upload.file.read(MAX_FORM + 1)
    if not data:
        return None
    if len(data) > MAX_FORM:
        raise ValueError("form_too_large")
    return hashlib.sha256(data).hexdigest()


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
        error = TEXT["lookup_rate_limited"][i].format(limit=exc.limit, minutes=max(1, math.ceil(exc.retry_after / 60)))
        code, retry_after = 429, exc.retry_after
    except lookup.NotRegistered:
        error, code = TEXT["not_registered"][i], 404
    except lookup.LookupUnavailable:
        error, code = TEXT["unavailable"][i], 503
    else:
        applicant = str(form.get("id_number", "")).strip().upper()
        today = utcnow().date()
        rows = [{"m": m, "age": _age(m.birth_date, today), "applicant": m.id_number == applicant} for m in members]
        return page(request, "case_members.html", client=client, purpose=purpose, case_ref=case_ref,
                    evidence=signed.sha256, rows=rows,
                    adults=[r for r in rows if r["age"] >= 18 and r["m"].status == "normal"],
                    sources=list(SOURCES), financial=tuple(FINANCIAL_SOURCES), error=None)
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
    with its authorization; verification starts when the hub runs with Airflow."""
    form = await request.form(max_files=60, max_fields=400, max_part_size=MAX_FORM)
    i = 1 if lang_of(request) == "en" else 0
    sources = [s for s in form.getlist("sources") if s in SOURCES]
    members, consents, problems = [], [], []
    count = str(form.get("count", ""))
    count = min(_whole(count) or 0, 20)
    by_index: dict[str, str] = {}
    for k in range(count):
        if form.get(f"m{k}_include") != "on":
            continue
        idn, name, relation = (str(form.get(f"m{k}_{f}", "")) for f in ("id", "name", "relation"))
        by_index[str(k)] = idn
        members.append({"id_number": idn, "name": name, "relation": relation})
    for k, idn in by_index.items():
        try:
            own = _sha256(form.get(f"m{k}_form")) or (str(form.get(f"m{k}_evidence", "")) or None)
            fin = _sha256(form.get(f"m{k}_fin_form"))
        except ValueError:
            problems.append(f"{TEXT['signed_form'][i]} > 10 MB")
            continue
        consent = {"id_number": idn, "sources": sources}
        guardian = str(form.get(f"m{k}_guardian", ""))
        if own:
            consent["evidence_sha256"] = own
        elif guardian in by_index:
            consent["guardian_id_number"] = by_index[guardian]
        else:
            continue  # no form: the member is named but has not authorized; the gate refuses their fetches
        fin_sources = [s for s in sources if s in FINANCIAL_SOURCES]
        if fin and fin_sources:  # the separate financial consent: the member's own, or the guardian's for a minor
            consent["financial_consent"] = {"sources": fin_sources, "evidence_sha256": fin}
        consents.append(consent)
    now = utcnow()

    def days(field: str, default: int, top: int) -> int:
        v = _whole(str(form.get(field, "")).strip())
        return min(max(v, 1), top) if v is not None else default

    doc = {"purpose": str(form.get("purpose", "")), "case_ref": str(form.get("case_ref", "")).strip(),
           "sources": sources, "members": members,
           "authorization": {"valid_from": now.isoformat(),
                             "valid_until": (now + dt.timedelta(days=days("valid_days", 365, 1095))).isoformat(),
                             "recheck_interval_days": days("recheck_days", 90, 365),
                             "data_life_days": days("data_life", 30, 365), "consents": consents}}
    if not problems:
        try:
            request_id = create(doc, department=client.department, client_id=client.id)
        except Invalid as exc:
            problems = exc.problems
        else:
            trigger_verification(request_id)
            return secured(RedirectResponse(f"/console/requests/{request_id}", status_code=status.HTTP_303_SEE_OTHER),
                           request)
    # the problems name fields (members[2].id_number), never values
    return page(request, "case_new.html", status_code=422, client=client, purposes=list(PURPOSES),
                form={"purpose": doc["purpose"], "case_ref": doc["case_ref"]},
                error=TEXT["form_problem"][i] + " " + "; ".join(problems))


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, client: Caseworker,
                 request_id: Annotated[str, PathParam(pattern=HEX32)]) -> HTMLResponse:
    view = request_view(request_id, client.department)  # NotFound (404) unless the department's own
    return page(request, "case_request.html", client=client, req=view)


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
    return page(request, "case_record.html", client=client, rec=rec, c=rec.content, purpose=purpose)
