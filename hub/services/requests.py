"""A department's verification requests as its caseworkers see them, through the JSON API (/v1/requests) and the
console (/console/requests) alike: submitting one, starting its verification, its state per source, and the
department's list. A department sees its own requests only; another's is "not found", the same as none."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, select

from consent import ledger
from core.settings import settings
from core.store import FetchBatch, LedgerEvent, QuarantinedRow, session
from core.store import Request as RequestRow
from hub.services import worker
from hub.airflow.client import AirflowClient, AirflowError
from hub.services.errors import Invalid, NotFound
from hub.stages.intake import InvalidRequest, create_request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceState:
    """Where a source stands for a request: its latest batch's status, and why it is not complete."""

    source: str
    status: str
    reason: str | None


@dataclass(frozen=True)
class RequestView:
    id: str
    status: str
    purpose: str
    case_ref: str
    sources: list[str]
    household_id: str | None  # the household's pseudonym, once household registration answered
    created_at: dt.datetime
    source_status: list[SourceState]


@dataclass(frozen=True)
class RequestSummary:
    id: str
    status: str
    purpose: str
    case_ref: str
    kind: str
    household_id: str | None
    created_at: dt.datetime


def create(doc: dict, *, department: str, client_id: str) -> str:
    """Store the department's request and its authorizations; return its id. Invalid lists every problem (fields,
    never values), as ``{"problems": [...]}``."""
    try:
        return create_request(doc, department=department, client_id=client_id)
    except InvalidRequest as exc:
        raise Invalid({"problems": exc.problems}, exc.problems) from None


def _department_request(s, request_id: str, department: str | None) -> tuple[RequestRow, dict[str, FetchBatch]]:
    """The request, when it is the department's (NotFound otherwise), and its latest batch per source."""
    req = s.get(RequestRow, request_id)
    if req is None or req.department != department:
        raise NotFound("no such request")
    batches = s.scalars(select(FetchBatch).where(FetchBatch.request_id == request_id)
                        .order_by(FetchBatch.fetched_at, FetchBatch.id)).all()
    return req, {b.source: b for b in batches}


def _view(req: RequestRow, latest: dict[str, FetchBatch]) -> RequestView:
    return RequestView(id=req.id, status=req.status, purpose=req.purpose, case_ref=req.case_ref,
                       sources=req.sources, household_id=req.household_ref, created_at=req.created_at,
                       source_status=[SourceState(source=k, status=b.status, reason=b.reason)
                                      for k, b in latest.items()])


def request_view(request_id: str, department: str | None) -> RequestView:
    """The request with its sources' states, when it is the department's; NotFound otherwise."""
    with session() as s:
        return _view(*_department_request(s, request_id, department))


def department_requests(department: str, *, before: str | None = None, limit: int = 50,
                        status_: str | None = None) -> list[RequestSummary]:
    """The department's requests, newest first (keyset on created_at, id); ``before`` must be one of them."""
    q = select(RequestRow).where(RequestRow.department == department)
    if status_:
        q = q.where(RequestRow.status == status_)
    with session() as s:
        if before:
            pivot = s.get(RequestRow, before)
            if pivot is None or pivot.department != department:
                raise Invalid("before: not a request of this department")
            q = q.where((RequestRow.created_at < pivot.created_at)
                        | ((RequestRow.created_at == pivot.created_at) & (RequestRow.id < pivot.id)))
        rows = s.scalars(q.order_by(RequestRow.created_at.desc(), RequestRow.id.desc()).limit(limit)).all()
        return [RequestSummary(id=r.id, status=r.status, purpose=r.purpose, case_ref=r.case_ref, kind=r.kind,
                               household_id=r.household_ref, created_at=r.created_at) for r in rows]


def trigger_verification(request_id: str) -> str | None:
    """Start verify_household for the request through Airflow's REST API, when the hub runs with Airflow
    (HUB_AIRFLOW_URL set). A failure to reach Airflow leaves the request received (logged; `hub verify` starts it).
    Without Airflow, this process's worker (hub.services.worker), if it runs one, is told to take it first; the
    worker's claim is then the ``verification.triggered`` entry."""
    if not settings().airflow_url:
        worker.wake(request_id)
        return None
    try:
        run_id = AirflowClient.from_env().trigger("verify_household", {"request_id": request_id})
    except (AirflowError, OSError, ValueError) as exc:  # requests' errors are OSErrors
        log.warning("could not start verify_household for request %s: %s", request_id, exc.__class__.__name__)
        return None
    with session() as s:
        ledger.append(s, "verification.triggered", {"request_id": request_id, "dag_id": "verify_household",
                                                     "dag_run_id": run_id})
    return run_id


# -- following a request: where each source stands and what happens next ------------------------------------------

FINISHED = ("published", "refused", "failed")


@dataclass(frozen=True)
class SourceProgress:
    """Where one source of a request stands, from what the store holds.

    ``step``: waiting (the run has not started), asking (its agency is being asked), answered (stored, not yet
    checked), checked (validated, complete), incomplete (validated or fetched, but not complete: ``reason``, a code
    of fetch_batches.reason), refused (the gate allowed nobody), not_asked (the run ended before asking)."""

    source: str
    step: str
    asked: int  # members asked about (after the consent gate)
    refused: int  # members the gate refused
    rows: int  # rows the agency returned
    quarantined: int  # of them, rows validation put in quarantine
    reason: str | None


@dataclass(frozen=True)
class Progress:
    """A request as its caseworker follows it: the request, the stage it is at, each source's progress, who runs it
    (``driver``: airflow, worker, or none: nothing will start it until `hub verify`) and, once it ended without a
    record, why (``why``: NO_MEMBER_AUTHORIZED, HOUSEHOLD_NOT_IDENTIFIED, WORKER_ERROR or NOT_PUBLISHED)."""

    request: RequestView
    stage: str  # signing | waiting | asking | checking | publishing | published | refused | failed
    sources: list[SourceProgress]
    driver: str
    why: str | None

    @property
    def finished(self) -> bool:
        return self.stage in FINISHED

    @property
    def answered(self) -> int:
        return sum(s.step not in ("waiting", "asking", "not_asked") for s in self.sources)


def _step(status: str, batch: FetchBatch | None) -> str:
    if batch is None:
        return {"signing": "waiting", "received": "waiting", "running": "asking"}.get(status, "not_asked")
    if batch.status == "refused":
        return "refused"
    if batch.status != "complete":
        return "incomplete"
    return "checked" if batch.validated else "answered"


def _why(s, req: RequestRow, latest: dict[str, FetchBatch]) -> str | None:
    """Why a request ended without a record, in a code the console names; None while it has not."""
    if req.status == "refused":
        return "NO_MEMBER_AUTHORIZED"
    if req.status != "failed":
        return None
    entry = s.scalars(select(LedgerEvent.payload).where(
        LedgerEvent.kind == "publish.failed", LedgerEvent.payload["request_id"].as_string() == req.id)
        .order_by(LedgerEvent.seq.desc()).limit(1)).first()
    reason = (entry or {}).get("reason") or ""
    if reason == worker.WORKER_ERROR:
        return worker.WORKER_ERROR
    household = latest.get("household")
    if reason.startswith("household registration") or (household is not None and household.status != "complete"):
        return "HOUSEHOLD_NOT_IDENTIFIED"
    return "NOT_PUBLISHED"


def request_progress(request_id: str, department: str | None) -> Progress:
    """The request's progress, when it is the department's; NotFound otherwise. Counts only, no personal data."""
    with session() as s:
        req, latest = _department_request(s, request_id, department)
        view = _view(req, latest)
        quarantined = dict(s.execute(
            select(QuarantinedRow.batch_id, func.count(func.distinct(QuarantinedRow.row_no)))
            .where(QuarantinedRow.batch_id.in_([b.id for b in latest.values()]))
            .group_by(QuarantinedRow.batch_id)).all()) if latest else {}
        sources = []
        for key in list(req.sources) + [k for k in latest if k not in req.sources]:
            b = latest.get(key)
            sources.append(SourceProgress(
                source=key, step=_step(req.status, b), asked=b.requested if b else 0, refused=b.refused if b else 0,
                rows=b.returned if b else 0, quarantined=quarantined.get(b.id, 0) if b else 0,
                reason=b.reason if b is not None and b.status != "complete" else None))
        cfg = settings()
        driver = "airflow" if cfg.airflow_url else "worker" if cfg.inline_worker else "none"
        return Progress(request=view, stage=stage_of(req, latest), sources=sources, driver=driver,
                        why=_why(s, req, latest))


def stage_of(req: RequestRow, latest: dict[str, FetchBatch]) -> str:
    """The stage a request is at, from its status and each source's latest batch: what the caseworker's request
    page and the resident's (/m/) both say."""
    if req.status in FINISHED:
        return req.status
    if req.status == "signing":  # the members sign on their phones (码上办): nothing asked until they have
        return "signing"
    if req.status == "received":
        return "waiting"
    if any(_step(req.status, latest.get(key)) in ("waiting", "asking")
           for key in list(req.sources) + [k for k in latest if k not in req.sources]):
        return "asking"
    if any(not b.validated for b in latest.values()):
        return "checking"
    return "publishing"
