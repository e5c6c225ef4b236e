"""A department's verification requests as its caseworkers see them, through the JSON API (/v1/requests) and the
console (/console/requests) alike: submitting one, starting its verification, its state per source, and the
department's list. A department sees its own requests only; another's is "not found", the same as none."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select

from consent import ledger
from core.settings import settings
from core.store import FetchBatch, session
from core.store import Request as RequestRow
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


def request_view(request_id: str, department: str | None) -> RequestView:
    """The request with its sources' states, when it is the department's; NotFound otherwise."""
    with session() as s:
        req = s.get(RequestRow, request_id)
        if req is None or req.department != department:
            raise NotFound("no such request")
        batches = s.scalars(select(FetchBatch).where(FetchBatch.request_id == request_id)
                            .order_by(FetchBatch.fetched_at)).all()
        latest = {b.source: b for b in batches}
        return RequestView(id=req.id, status=req.status, purpose=req.purpose, case_ref=req.case_ref,
                           sources=req.sources, household_id=req.household_ref, created_at=req.created_at,
                           source_status=[SourceState(source=k, status=b.status, reason=b.reason)
                                          for k, b in latest.items()])


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
    (HUB_AIRFLOW_URL set). A failure to reach Airflow leaves the request received (logged; `hub verify` starts it)."""
    if not settings().airflow_url:
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
