"""What staff read of data validation: the GX validation runs and the rows they quarantined, newest first with keyset
pagination (``before``: the id to continue below), for the JSON API (/v1/validation-runs, /v1/quarantine) and the
console's pages and downloads alike. Nothing here holds personal data: counts, check names, pseudonyms."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import func, select

from core.store import FetchBatch, QuarantinedRow, ValidationRun, session, validation_texts
from hub.services.errors import NotFound

PAGE = 50


@dataclass(frozen=True)
class Run:
    """One GX suite's result (the packed Data Docs themselves only through ``run_docs``)."""

    id: int
    suite: str
    source: str | None  # empty for the checks across the sources of a request
    request_id: str | None
    batch_id: str | None
    run_id: str | None
    success: bool
    rows: int
    rows_failed: int
    results: list[dict]
    has_docs: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class Quarantined:
    """A row validation rejected, with the request its batch served."""

    id: int
    source: str
    request_id: str
    batch_id: str
    row_no: int
    person_ref: str | None
    expectation: str
    reason: str  # Chinese / English
    validation_run_id: int | None
    created_at: dt.datetime


def _run(r: ValidationRun, texts: dict[str, str]) -> Run:
    """The run as staff read it: its results from the validation texts (or inline, stored before 0019); a run stored
    with no per-check results (the column allows it: a run written by hand, or by a tool) reads as having none."""
    results = json.loads(texts[r.results_sha256]) if r.results_sha256 else (r.results or [])
    return Run(id=r.id, suite=r.suite, source=r.source, request_id=r.request_id, batch_id=r.batch_id, run_id=r.run_id,
               success=r.success, rows=r.rows, rows_failed=r.rows_failed, results=results,
               has_docs=bool(r.docs_sha256 or r.docs), created_at=r.created_at)


def validation_runs(*, source: str | None = None, failed_only: bool = False, run_id: str | None = None,
                    request_id: str | None = None, before: int | None = None, limit: int = PAGE) -> list[Run]:
    """Validation runs, newest first."""
    q = select(ValidationRun)
    if source:
        q = q.where(ValidationRun.source == source)
    if failed_only:
        q = q.where(ValidationRun.success.is_(False))
    if run_id:
        q = q.where(ValidationRun.run_id == run_id)
    if request_id:
        q = q.where(ValidationRun.request_id == request_id)
    if before:
        q = q.where(ValidationRun.id < before)
    with session() as s:
        runs = s.scalars(q.order_by(ValidationRun.id.desc()).limit(limit)).all()
        texts = validation_texts(s, [r.results_sha256 for r in runs])
        return [_run(r, texts) for r in runs]


def run_docs(run_id: int) -> tuple[Run, str]:
    """A validation run and its packed Data Docs (schemas.docs.unpack); NotFound when it has none."""
    with session() as s:
        run = s.get(ValidationRun, run_id)
        if run is None or not (run.docs_sha256 or run.docs):
            raise NotFound("no Data Docs for that validation run")
        texts = validation_texts(s, [run.results_sha256, run.docs_sha256])
        return _run(run, texts), texts[run.docs_sha256] if run.docs_sha256 else run.docs


def quarantined(*, source: str | None = None, expectation: str | None = None, batch_id: str | None = None,
                request_id: str | None = None, before: int | None = None,
                limit: int = PAGE) -> tuple[list[Quarantined], dict[str, int]]:
    """Quarantined rows, newest first, and the number of rows per check over the whole quarantine."""
    q = select(QuarantinedRow, FetchBatch.request_id).join(FetchBatch, FetchBatch.id == QuarantinedRow.batch_id)
    if source:
        q = q.where(QuarantinedRow.source == source)
    if expectation:
        q = q.where(QuarantinedRow.expectation == expectation)
    if batch_id:
        q = q.where(QuarantinedRow.batch_id == batch_id)
    if request_id:
        q = q.where(FetchBatch.request_id == request_id)
    if before:
        q = q.where(QuarantinedRow.id < before)
    with session() as s:
        rows = [Quarantined(id=r.id, source=r.source, request_id=rid, batch_id=r.batch_id, row_no=r.row_no,
                            person_ref=r.person_ref, expectation=r.expectation, reason=r.reason,
                            validation_run_id=r.validation_run_id, created_at=r.created_at)
                for r, rid in s.execute(q.order_by(QuarantinedRow.id.desc()).limit(limit))]
        counts = dict(s.execute(select(QuarantinedRow.expectation, func.count()).group_by(QuarantinedRow.expectation))
                      .all())
        return rows, counts
