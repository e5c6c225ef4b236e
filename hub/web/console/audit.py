"""The auditors' console: the ledger's integrity against the latest signed checkpoint, one person's timeline of
authorizations, fetches and reads, unusual reads, and the entries themselves; each table downloadable as CSV or
Excel. An auditor finds a person by ID number in a form (POSTed, turned into the pseudonym at once); addresses
carry pseudonyms only. Every look at the ledger is itself a ledger entry (audit.read)."""

from __future__ import annotations

import datetime as dt
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
from hub.web.console.pages import KIND_NAMES, TEXT, Before, Format, console_role, download, lang_of, page, secured
from schemas.codes import is_valid_id

router = APIRouter(prefix="/console/audit", include_in_schema=False)
Auditor = Annotated[clients.Client, Depends(console_role("auditor"))]
PersonRef = Annotated[str, PathParam(pattern=PERSON)]
HouseholdRef = Annotated[str, PathParam(pattern=HOUSEHOLD)]
EXPORT_MAX = 50_000
SHOWN = ("request_id", "source", "purpose", "department", "client_id", "household_ref", "person_ref", "reason",
         "outcome", "why", "basis", "policy_rule", "fields", "version", "status", "what",
         "applicant_ref", "case_ref", "evidence_sha256", "failure")  # the last: a household lookup's

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
})
EVENT_COLUMNS = [Column("seq", "序号", "Seq"), Column("recorded_at", "时间", "When"), Column("kind", "类型代码", "Kind"),
                 Column("kind_name", "类型", "Kind (name)"), Column("payload", "详情", "Details")]
UNUSUAL_COLUMNS = [Column("seq", "序号", "Seq"), Column("at", "时间", "When"), Column("kind", "异常类型", "Kind"),
                   Column("department", "部门", "Department"), Column("client_id", "账号", "Client"),
                   Column("household_ref", "家庭（假名）", "Household (pseudonym)"), Column("detail", "说明", "Detail")]


def details(payload: dict) -> list[tuple[str, str]]:
    return [(k, ", ".join(map(str, v)) if isinstance(v, list) else str(v)) for k, v in payload.items()
            if k in SHOWN and v not in (None, "", [])]


def _event_rows(rows, lang: str) -> list[dict]:
    i = 1 if lang == "en" else 0
    return [{"seq": e.seq, "recorded_at": e.recorded_at, "kind": e.kind,
             "kind_name": KIND_NAMES.get(e.kind, (e.kind, e.kind))[i],
             "payload": "; ".join(f"{k}={v}" for k, v in details(e.payload))} for e in rows]


def _since(days: int | None) -> dt.datetime:
    return utcnow() - dt.timedelta(days=days if days and 1 <= days <= 366 else 7)


@router.get("/", response_class=HTMLResponse)
def audit_home(request: Request, client: Auditor,
               kind: Annotated[str | None, Query(max_length=48, pattern=NO_NUL)] = None,
               before: Before = None) -> HTMLResponse:
    rows = audit.events(kind=kind or None, before=before, limit=50)
    audit_read(client, "events", len(rows))
    return page(request, "audit_home.html", client=client, check=audit.integrity(), rows=rows, kind=kind,
                kinds=sorted(KIND_NAMES), details=details, more=len(rows) == 50, error=None)


@router.post("/person")
def person_lookup(request: Request, client: Auditor, id_number: Annotated[str, Form(max_length=32)] = "") -> Response:
    """The ID number comes in the body and leaves as its pseudonym in the address of the timeline."""
    idn = id_number.strip().upper()
    if not is_valid_id(idn):
        rows = audit.events(limit=50)
        i = 1 if lang_of(request) == "en" else 0
        return page(request, "audit_home.html", status_code=422, client=client, check=audit.integrity(), rows=rows,
                    kind=None, kinds=sorted(KIND_NAMES), details=details, more=False, error=TEXT["bad_id"][i])
    ref = keyring().pseudonym(idn)
    return secured(RedirectResponse(f"/console/audit/persons/{ref}", status_code=status.HTTP_303_SEE_OTHER), request)


@router.get("/persons/{person_ref}", response_class=HTMLResponse)
def timeline_page(request: Request, person_ref: PersonRef, client: Auditor) -> HTMLResponse:
    rows = audit.timeline(person_ref, limit=500)
    audit_read(client, "timeline", len(rows), person_ref=person_ref)
    return page(request, "audit_timeline.html", client=client, ref=person_ref, rows=rows, details=details)


@router.get("/households/{household_ref}", response_class=HTMLResponse)
def household_trail(request: Request, household_ref: HouseholdRef, client: Auditor) -> HTMLResponse:
    """A household's ledger trail (what an assistance review's entry links to): every entry naming it."""
    rows = audit.household_trail(household_ref)
    audit_read(client, "household_trail", len(rows), household_ref=household_ref)
    return page(request, "audit_timeline.html", client=client, ref=household_ref, rows=rows, details=details,
                export=False)


@router.get("/persons/{person_ref}/timeline.{fmt}")
def timeline_export(request: Request, person_ref: PersonRef, fmt: Format, client: Auditor) -> Response:
    rows = audit.timeline(person_ref, limit=EXPORT_MAX)
    audit_read(client, "timeline_export", len(rows), person_ref=person_ref)
    return download(_event_rows(rows, lang_of(request)), EVENT_COLUMNS, fmt, "timeline", lang_of(request))


@router.get("/events.{fmt}")
def events_export(request: Request, fmt: Format, client: Auditor,
                  kind: Annotated[str | None, Query(max_length=48, pattern=NO_NUL)] = None,
                  days: Annotated[int | None, Query(ge=1, le=366)] = None) -> Response:
    rows = audit.events(kind=kind or None, since=_since(days), limit=EXPORT_MAX)
    audit_read(client, "events_export", len(rows))
    return download(_event_rows(rows, lang_of(request)), EVENT_COLUMNS, fmt, "ledger", lang_of(request))


def _unusual(days: int | None, lang: str) -> list[dict]:
    i = 1 if lang == "en" else 0
    return [{"seq": u.seq, "at": u.at, "kind": TEXT[u.kind][i], "kind_code": u.kind, "department": u.department,
             "client_id": u.client_id, "household_ref": u.household_ref, "detail": u.detail}
            for u in audit.unusual_reads(_since(days))]


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
