"""What verification staff watch: the quarantine (rows validation rejected, with why), the validation runs with
their Data Docs (served by the console), and each source's health, freshness and validation pass rate."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from core.ids import NO_NUL
from core.store import utcnow
from hub.services.validation import quarantined, validation_runs
from hub.stages.health import overview
from hub.stages.reverify import waiting_rechecks
from hub.web.deps import Before, Limit, Staff
from hub.web import examples as ex
from hub.web.errors import DocumentRoute
from hub.web.models import (
    QuarantinedOut,
    QuarantineOut,
    SourceHealthOut,
    SourcesOut,
    ValidationRunOut,
    ValidationRunsOut,
    WaitingRecheckOut,
    WaitingRechecksOut,
)

router = APIRouter(route_class=DocumentRoute)


def _docs(run_id: int | None) -> str | None:
    """The console's page of a validation run's Data Docs."""
    return f"/console/data-docs/{run_id}" if run_id else None


@router.get("/v1/quarantine", response_model=QuarantineOut, tags=["validation"], responses=ex.answers(ex.QUARANTINE_OUT))
def get_quarantine(
    client: Staff, limit: Limit = 50, before: Before = None,
    source: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    expectation: Annotated[str | None, Query(max_length=96, pattern=NO_NUL)] = None,
    request_id: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    batch_id: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
) -> QuarantineOut:
    rows, counts = quarantined(source=source, expectation=expectation, request_id=request_id, batch_id=batch_id,
                               before=before, limit=limit)
    items = [QuarantinedOut(id=q.id, source=q.source, request_id=q.request_id, batch_id=q.batch_id, row_no=q.row_no,
                            person_ref=q.person_ref, expectation=q.expectation, reason=q.reason,
                            validation_run_id=q.validation_run_id, data_docs=_docs(q.validation_run_id),
                            created_at=q.created_at) for q in rows]
    return QuarantineOut(items=items, by_check=counts, next_before=items[-1].id if len(items) == limit else None)


@router.get("/v1/validation-runs", response_model=ValidationRunsOut, tags=["validation"],
            responses=ex.answers(ex.VALIDATION_RUNS_OUT))
def get_validation_runs(
    client: Staff, limit: Limit = 50, before: Before = None,
    source: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None, failed: bool = False,
    run_id: Annotated[str | None, Query(max_length=250, pattern=NO_NUL)] = None,
    request_id: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
) -> ValidationRunsOut:
    runs = validation_runs(source=source, failed_only=failed, run_id=run_id, request_id=request_id, before=before,
                           limit=limit)
    items = [ValidationRunOut(id=r.id, suite=r.suite, source=r.source, request_id=r.request_id, batch_id=r.batch_id,
                              run_id=r.run_id, success=r.success, rows=r.rows, rows_failed=r.rows_failed,
                              results=r.results, data_docs=_docs(r.id) if r.has_docs else None,
                              created_at=r.created_at) for r in runs]
    return ValidationRunsOut(items=items, next_before=items[-1].id if len(items) == limit else None)


@router.get("/v1/sources", response_model=SourcesOut, tags=["validation"], responses=ex.answers(ex.SOURCES_OUT))
def get_sources(client: Staff, days: Annotated[int, Query(ge=1, le=366)] = 7) -> SourcesOut:
    """Each source's health (latest probe), freshness (last complete fetch) and validation pass rate."""
    since = utcnow() - dt.timedelta(days=days)
    return SourcesOut(since=since, items=[SourceHealthOut(**{k: v for k, v in o.items() if k != "failure"})
                                          for o in overview(since)])


@router.get("/v1/rechecks/waiting", response_model=WaitingRechecksOut, tags=["validation"],
            responses=ex.answers(ex.WAITING_RECHECKS_OUT))
def get_waiting_rechecks(client: Staff, limit: Limit = 50) -> WaitingRechecksOut:
    """Households whose latest re-check did not come back complete (an agency down, an answer refused), the
    longest waiting first: how many, since when, and when each is due again."""
    waiting = waiting_rechecks()
    return WaitingRechecksOut(count=len(waiting), since=waiting[0].since if waiting else None,
                              items=[WaitingRecheckOut(application_id=w.application_id, household_ref=w.household_ref,
                                                       attempts=w.attempts, since=w.since, last=w.last,
                                                       next_due=w.next_due, reasons=list(w.reasons))
                                     for w in waiting[:limit]])
