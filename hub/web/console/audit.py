"""The auditors' console: the ledger's integrity against the latest signed checkpoint (green, amber while entries
wait for a checkpoint, with an action to sign one now, red on any problem), one person's timeline of lookups,
authorizations, fetches and reads, unusual reads, and the entries themselves; each table downloadable as CSV or
Excel. An auditor finds a person by ID number in a form (POSTed, turned into the pseudonym at once); addresses
carry pseudonyms only. Entries are shown as an auditor asks of them, who and why: account, department, purpose
and case number (hub.services.audit.resolve), not client and request ids. Every look at the ledger is itself a
ledger entry (audit.read), made after the page's integrity was checked (so it is the next checkpoint's)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from core.crypto import keyring
from core.ids import HOUSEHOLD, NO_NUL, PERSON
from core.store import utcnow
from hub.services import audit, clients
from hub.services.export import Column
from hub.services.reads import audit_read
from hub.web.console.pages import (KIND_NAMES, PURPOSE_NAMES, TEXT, Before, Format, console_role, download, lang_of,
                                   department_label, page, secured)
from schemas.codes import is_valid_id
from schemas.vocabulary import SOURCE_NAMES

router = APIRouter(prefix="/console/audit", include_in_schema=False)
Auditor = Annotated[clients.Client, Depends(console_role("auditor"))]
PersonRef = Annotated[str, PathParam(pattern=PERSON)]
HouseholdRef = Annotated[str, PathParam(pattern=HOUSEHOLD)]
EXPORT_MAX = 50_000
SHOWN = ("request_id", "source", "purpose", "department", "client_id", "household_ref", "person_ref", "reason",
         "outcome", "why", "basis", "policy_rule", "fields", "version", "status", "what",
         "applicant_ref", "case_ref", "evidence_sha256", "failure")  # the last: a household lookup's
ACCESS_KINDS = (*audit.READ_KINDS, audit.REVIEW_READ)  # the timeline's "who read" section: lookups and reads
# what the resolved columns (account, department, purpose, case number, sources and fields) already say
RESOLVED = {"client_id", "basis", "request_id", "department", "purpose", "case_ref", "source", "fields"}

TEXT.update({
    "integrity": ("台账完整性", "Ledger integrity"),
    "intact": ("完整：全部记录与已签名检查点一致", "Intact: every entry agrees with the signed checkpoints"),
    "not_intact": ("发现问题", "Problems found"),
    "checkpoint": ("最新检查点", "Latest checkpoint"),
    "size": ("条目数", "Entries"),
    "after_checkpoint": ("检查点之后的新条目", "Entries after the checkpoint"),
    "person_lookup": ("按身份证号查询个人时间线", "A person's timeline by ID number"),
    "show_timeline": ("查看时间线", "Show the timeline"),
    "timeline": ("个人时间线", "Timeline"),
    "events": ("台账记录", "Ledger entries"),
    "kind": ("类型", "Kind"),
    "details": ("详情", "Details"),
    "seq": ("序号", "Seq"),
    "no_events": ("没有记录。", "No entries."),
    "bad_id": ("身份证号无效（请检查校验位）。", "Not a valid ID number (check character)."),
    "unusual_kind": ("异常类型", "Kind"),
    "bulk": ("批量查阅", "bulk reads"),
    "no_open_case": ("无有效委托的查阅", "read with no open case"),
    "off_hours": ("非工作时间查阅", "read outside office hours"),
    "lookup_refused": ("被拒绝的户籍成员查询", "household lookup refused"),
    "lookup_rate_limited": ("超出频次的户籍成员查询", "household lookup over the rate limit"),
    "department_col": ("部门", "Department"),
    "client_col": ("账号", "Client"),
    "since": ("起始日期", "Since"),
    "integrity_amber": ("完整，但有 {n} 条记录尚未纳入签名检查点",
                        "Intact, but {n} entries are not yet under a signed checkpoint"),
    "integrity_amber_why": ("这些记录尚未被签名的树头覆盖，事后的改动无法被证明。",
                            "No signed tree head covers them yet: a later change to them could not be proven."),
    "sign_checkpoint": ("立即签署检查点", "Sign a checkpoint now"),
    "checkpoint_signed": ("已签署检查点 #{n}", "Checkpoint #{n} signed"),
    "account_col": ("账号", "Account"),
    "what_col": ("内容", "What"),
    "audit_automatic": ("核对平台（自动）", "the hub (automatic)"),
    "audit_no_policy": ("该部门对此用途无访问规则", "no access rule for the department and purpose"),
    "lookup_members_found": ("查到 {n} 名成员", "{n} members found"),
    "who_read": ("谁查询、查阅了此人的数据", "Who looked up or read this person's data"),
    "no_reads": ("没有查询或查阅记录。", "No lookups or reads."),
    "all_entries": ("全部记录", "Every entry"),
})
KIND_NAMES.update({"audit.checkpoint_signed": ("签署检查点", "checkpoint signed")})
FIELD_NAMES = {  # the parts of a record a read returns (hub/rules/access_policy.toml)
    "request_id": ("委托编号", "request"), "division": ("行政区划", "division"), "members": ("家庭成员", "members"),
    "facts": ("核对事实", "facts"), "discrepancies": ("差异", "discrepancies"),
    "assessment": ("认定结论", "assessment"), "sources": ("数据来源情况", "sources"),
    "authority": ("出具机构", "authority"), "answers": ("认定结论", "answer"),
}
OUTCOME_NAMES = {  # a household lookup's
    "found": ("已查到", "found"), "not_found": ("户籍无此人", "not registered"),
    "unavailable": ("户籍系统不可用", "registration unavailable"), "refused": ("已拒绝（材料不符）", "refused (input)"),
    "rate_limited": ("已拒绝（超出频次）", "refused (rate limit)"),
}
EVENT_COLUMNS = [Column("seq", "序号", "Seq"), Column("recorded_at", "时间", "When"), Column("kind", "类型代码", "Kind"),
                 Column("kind_name", "类型", "Kind (name)"), Column("account", "账号", "Account"),
                 Column("department", "部门", "Department"), Column("department_code", "部门代码", "Department code"),
                 Column("purpose", "用途", "Purpose"), Column("case_ref", "业务编号", "Case number"),
                 Column("what", "内容", "What"), Column("payload", "详情", "Details")]
UNUSUAL_COLUMNS = [Column("seq", "序号", "Seq"), Column("at", "时间", "When"), Column("kind", "异常类型", "Kind"),
                   Column("department", "部门", "Department"), Column("department_code", "部门代码", "Department code"),
                   Column("account", "账号", "Account"), Column("client_id", "账号编号", "Client id"),
                   Column("household_ref", "家庭（假名）", "Household (pseudonym)"), Column("detail", "说明", "Detail")]


def details(payload: dict) -> list[tuple[str, str]]:
    return [(k, ", ".join(map(str, v)) if isinstance(v, list) else str(v)) for k, v in payload.items()
            if k in SHOWN and v not in (None, "", [])]


def _field_name(key: str, i: int) -> str:
    """A record part in words: ``facts.vehicles_vessels`` is the facts of that source, ``answers.dibao`` the answer
    for that programme."""
    head, _, rest = key.partition(".")
    name = FIELD_NAMES.get(head, (head, head))[i]
    if not rest:
        return name
    sub = SOURCE_NAMES.get(rest) or PURPOSE_NAMES.get(rest) or (rest, rest)
    return f"{name}·{sub[i]}" if i == 0 else f"{name}: {sub[i]}"


def entries(rows, lang: str) -> list[dict]:
    """Ledger entries as the console shows and exports them: who (account, department), why (purpose, case number),
    what (sources asked, parts of the record read, a lookup's outcome) in words; what is left of the payload as
    details (pseudonyms, hashes, codes)."""
    i = 1 if lang == "en" else 0
    out = []
    for e in audit.resolve(list(rows)):
        p = e.payload
        what = [SOURCE_NAMES.get(x, (x, x))[i] for x in e.sources] + [_field_name(f, i) for f in e.fields]
        if e.kind == audit.LOOKUP and p.get("outcome"):
            what.append(OUTCOME_NAMES.get(p["outcome"], (p["outcome"],) * 2)[i])
            if p.get("member_refs"):
                what.append(TEXT["lookup_members_found"][i].format(n=len(p["member_refs"])))
        if e.kind == "record.read_denied":
            what.append(TEXT["audit_no_policy" if p.get("why") == "no_policy" else "no_open_case"][i])
        if e.account:
            account = e.account
        elif e.automatic:
            account = TEXT["audit_automatic"][i]
        else:
            account = (e.client_id or "")[:12]
        out.append({"seq": e.seq, "recorded_at": e.at, "kind": e.kind,
                    "kind_name": KIND_NAMES.get(e.kind, (e.kind, e.kind))[i], "account": account,
                    "department": department_label(e.department, i), "department_code": e.department or "",
                    "purpose": PURPOSE_NAMES.get(e.purpose, (e.purpose or "",) * 2)[i] if e.purpose else "",
                    "case_ref": e.case_ref or "", "what": "、".join(what) if i == 0 else ", ".join(what),
                    "payload": "; ".join(f"{k}={v}" for k, v in details(p) if k not in RESOLVED)})
    return out


def _since(days: int | None) -> dt.datetime:
    return utcnow() - dt.timedelta(days=days if days and 1 <= days <= 366 else 7)


def _home(request: Request, client: clients.Client, *, kind: str | None = None, before: int | None = None,
          error: str | None = None, signed: int | None = None, status_code: int = 200) -> HTMLResponse:
    check = audit.integrity()  # before this look's own entry, which the next checkpoint covers
    rows = audit.events(kind=kind or None, before=before, limit=50)
    audit_read(client, "events", len(rows))
    return page(request, "audit_home.html", status_code=status_code, client=client, check=check,
                rows=entries(rows, lang_of(request)), kind=kind, kinds=sorted(KIND_NAMES), more=len(rows) == 50,
                error=error, signed=signed)


@router.get("/", response_class=HTMLResponse)
def audit_home(request: Request, client: Auditor,
               kind: Annotated[str | None, Query(max_length=48, pattern=NO_NUL)] = None,
               before: Before = None, signed: Before = None) -> HTMLResponse:
    return _home(request, client, kind=kind, before=before, signed=signed)


@router.post("/checkpoint")
def sign_checkpoint(request: Request, client: Auditor) -> Response:
    """"Sign a checkpoint now" (a form: the session cookie is SameSite=Strict, so no other site can post it); back
    to the integrity section, which shows the checkpoint just signed."""
    signed = audit.sign_checkpoint(client.id)
    return secured(RedirectResponse(f"/console/audit/?signed={signed['number']}#integrity",
                                    status_code=status.HTTP_303_SEE_OTHER), request)


@router.post("/person")
def person_lookup(request: Request, client: Auditor, id_number: Annotated[str, Form(max_length=32)] = "") -> Response:
    """The ID number comes in the body and leaves as its pseudonym in the address of the timeline."""
    idn = id_number.strip().upper()
    if not is_valid_id(idn):
        i = 1 if lang_of(request) == "en" else 0
        return _home(request, client, error=TEXT["bad_id"][i], status_code=422)
    ref = keyring().pseudonym(idn)
    return secured(RedirectResponse(f"/console/audit/persons/{ref}", status_code=status.HTTP_303_SEE_OTHER), request)


@router.get("/persons/{person_ref}", response_class=HTMLResponse)
def timeline_page(request: Request, person_ref: PersonRef, client: Auditor) -> HTMLResponse:
    rows = entries(audit.timeline(person_ref, limit=500), lang_of(request))
    audit_read(client, "timeline", len(rows), person_ref=person_ref)
    return page(request, "audit_timeline.html", client=client, ref=person_ref, rows=rows,
                reads=[e for e in rows if e["kind"] in ACCESS_KINDS])


@router.get("/households/{household_ref}", response_class=HTMLResponse)
def household_trail(request: Request, household_ref: HouseholdRef, client: Auditor) -> HTMLResponse:
    """A household's ledger trail (what an assistance review's entry links to): every entry naming it."""
    rows = audit.household_trail(household_ref)
    audit_read(client, "household_trail", len(rows), household_ref=household_ref)
    return page(request, "audit_timeline.html", client=client, ref=household_ref,
                rows=entries(rows, lang_of(request)), export=False)


@router.get("/persons/{person_ref}/timeline.{fmt}")
def timeline_export(request: Request, person_ref: PersonRef, fmt: Format, client: Auditor) -> Response:
    rows = audit.timeline(person_ref, limit=EXPORT_MAX)
    audit_read(client, "timeline_export", len(rows), person_ref=person_ref)
    return download(entries(rows, lang_of(request)), EVENT_COLUMNS, fmt, "timeline", lang_of(request))


@router.get("/events.{fmt}")
def events_export(request: Request, fmt: Format, client: Auditor,
                  kind: Annotated[str | None, Query(max_length=48, pattern=NO_NUL)] = None,
                  days: Annotated[int | None, Query(ge=1, le=366)] = None) -> Response:
    rows = audit.events(kind=kind or None, since=_since(days), limit=EXPORT_MAX)
    audit_read(client, "events_export", len(rows))
    return download(entries(rows, lang_of(request)), EVENT_COLUMNS, fmt, "ledger", lang_of(request))


def _unusual(days: int | None, lang: str) -> list[dict]:
    """Unusual reads with the account's and the department's names (the ids and codes kept beside them)."""
    i = 1 if lang == "en" else 0
    found = audit.unusual_reads(_since(days))
    names = audit.account_names({u.client_id for u in found})
    out = []
    for u in found:
        out.append({"seq": u.seq, "at": u.at, "kind": TEXT[u.kind][i], "kind_code": u.kind,
                    "department": department_label(u.department, i), "department_code": u.department,
                    "account": names.get(u.client_id, (u.client_id or "")[:12]), "client_id": u.client_id,
                    "household_ref": u.household_ref, "detail": u.detail,
                    "trail": bool(u.household_ref and re.fullmatch(HOUSEHOLD, u.household_ref))})
    return out


@router.get("/unusual", response_class=HTMLResponse)
def unusual_page(request: Request, client: Auditor,
                 days: Annotated[int | None, Query(ge=1, le=366)] = None) -> HTMLResponse:
    rows = _unusual(days, lang_of(request))
    audit_read(client, "unusual_reads", len(rows))
    return page(request, "audit_unusual.html", client=client, rows=rows, days=days or 7)


@router.get("/unusual.{fmt}")
def unusual_export(request: Request, fmt: Format, client: Auditor,
                   days: Annotated[int | None, Query(ge=1, le=366)] = None) -> Response:
    rows = _unusual(days, lang_of(request))
    audit_read(client, "unusual_reads_export", len(rows))
    return download(rows, UNUSUAL_COLUMNS, fmt, "unusual-reads", lang_of(request))
