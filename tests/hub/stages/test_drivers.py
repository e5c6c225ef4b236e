"""Both drivers call the same stages with the same idempotency: the DAG's fetch task (``fetch_source``, one source a
task, retried by Airflow) and the inline runner's ``fetch_many`` share ``fetch_batches``; and the moment a record
describes (``as_of``) is the driver's, never the clock's inside a stage."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from consent.authorizations import revoke
from core.crypto import keyring
from core.store import Authorization, FetchBatch, LedgerEvent, SourceRow, aad_source_row, session, utcnow
from hub.stages.intake import create_request
from hub.stages.pipeline import cross_check, fetch_many, fetch_source, run_inline, start_request, validate_batches
from hub.stages.records import publish_record, record_of_request
from hub.stages.reverify import recheck_batch, start_rechecks
from tests.support.households import sample


def _batches(request_id: str, source: str) -> list[FetchBatch]:
    with session() as s:
        return s.scalars(select(FetchBatch).where(FetchBatch.request_id == request_id, FetchBatch.source == source)
                         .order_by(FetchBatch.fetched_at)).all()


def _rows(batch_id: str) -> list[tuple]:
    keys = keyring()
    with session() as s:
        return [(r.person_ref, json.loads(keys.decrypt(r.data_enc, aad=aad_source_row(batch_id, r.row_no))))
                for r in s.scalars(select(SourceRow).where(SourceRow.batch_id == batch_id).order_by(SourceRow.row_no))]


def _fetch_entries(batch_id: str) -> list[dict]:
    with session() as s:
        return [e.payload for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "fetch.completed"))
                if e.payload.get("batch_id") == batch_id]


def _asked(agencies) -> int:
    return sum(v["requests"] for v in agencies.stats().values())


def test_the_dags_fetch_stage_run_twice_gives_one_batch_and_the_same_rows(agencies, database):
    request_id = create_request(sample(0))
    start_request(request_id)
    first = fetch_source(request_id, "household")
    rows, asked = _rows(first), _asked(agencies)
    again = fetch_source(request_id, "household")  # a retried task (the first attempt died after storing)
    assert again == first and _asked(agencies) == asked  # the same batch, no agency asked again
    assert [b.id for b in _batches(request_id, "household")] == [first]
    assert rows and _rows(first) == rows and len(_fetch_entries(first)) == 1


def test_an_attempt_beside_its_retry_stores_one_batch(agencies, database):
    """A task that Airflow took for dead still runs while its retry fetches the same source: both ask the agency,
    the store keeps one batch, and both return its id."""
    request_id = create_request(sample(0))
    inner = []

    def on_query(_ids, _page):  # while the first attempt's call is in flight, the retry runs to its end
        if not inner:
            inner.append(None)
            inner[0] = fetch_source(request_id, "household")

    agencies.agencies["household"].on_query = on_query
    try:
        outer = fetch_source(request_id, "household")
    finally:
        agencies.agencies["household"].on_query = None
    assert outer == inner[0]
    assert agencies.stats()["household"]["requests"] == 2  # both attempts asked ...
    assert [b.id for b in _batches(request_id, "household")] == [outer]  # ... one batch was stored
    assert len(_fetch_entries(outer)) == 1 and _rows(outer)


def test_the_inline_runner_resumes_from_the_batches_the_dag_fetched(agencies):
    request_id = create_request(sample(2, sources=["household", "tax"]))
    start_request(request_id)
    by_dag = {source: fetch_source(request_id, source) for source in ("household", "tax")}
    asked = _asked(agencies)
    pending = fetch_many([request_id])  # what `hub verify --sync` would fetch now: nothing new
    assert sorted(pending) == sorted(by_dag.values()) and _asked(agencies) == asked
    validate_batches(pending, run_id="drivers")
    assert fetch_many([request_id]) == []  # validated: nothing pending, as today
    assert fetch_source(request_id, "tax") == by_dag["tax"]  # and the DAG's retry finds the same batch
    assert _asked(agencies) == asked


def test_the_dags_fetch_stage_finds_the_batch_the_inline_runner_fetched(agencies):
    request_id = create_request(sample(2, sources=["household"]))
    (pending,) = fetch_many([request_id])
    asked = _asked(agencies)
    assert fetch_source(request_id, "household") == pending and _asked(agencies) == asked


def _consenting_adults(doc: dict) -> list[str]:
    return [c["id_number"] for c in doc["authorization"]["consents"] if c.get("evidence_sha256")]


def test_a_batch_whose_consent_lapsed_is_replaced_with_what_the_gate_allows_now(agencies):
    doc = next(d for d in (sample(k) for k in (7, 0, 2, 5, 9)) if len(_consenting_adults(d)) >= 2)
    gone = _consenting_adults(doc)[-1]
    request_id = create_request(doc)
    first = fetch_source(request_id, "household")
    with session() as s:
        auth = s.scalars(select(Authorization.id).where(Authorization.request_id == request_id)).one()
        revoke(s, auth, person_ref=keyring().pseudonym(gone))
    seen = []
    agencies.agencies["household"].on_query = lambda ids, _page: seen.append(list(ids))
    try:
        second = fetch_source(request_id, "household")
        assert fetch_source(request_id, "household") == second  # and then found again
    finally:
        agencies.agencies["household"].on_query = None
    assert second != first and [b.id for b in _batches(request_id, "household")] == [first, second]
    assert len(seen) == 1 and gone not in seen[0]  # asked again, without the member who withdrew
    with session() as s:
        old, new = s.get(FetchBatch, first), s.get(FetchBatch, second)
        assert new.requested == old.requested - 1 and keyring().pseudonym(gone) not in new.members


def test_a_source_refused_before_its_authorization_took_effect_is_fetched_once_it_has(agencies, monkeypatch):
    import hub.stages.pipeline

    doc = sample(5, sources=["household"])
    starts = utcnow() + dt.timedelta(days=1)
    doc["authorization"]["valid_from"] = starts.isoformat()
    request_id = create_request(doc)
    refused = fetch_source(request_id, "household")  # not valid yet: nobody asked
    assert fetch_source(request_id, "household") == refused and agencies.stats()["household"]["requests"] == 0
    monkeypatch.setattr(hub.stages.pipeline, "utcnow", lambda: starts + dt.timedelta(hours=1))  # the gate, tomorrow
    fetched = fetch_source(request_id, "household")
    assert fetched != refused and agencies.stats()["household"]["requests"] == 1
    assert [(b.id, b.status) for b in _batches(request_id, "household")] == [(refused, "refused"),
                                                                              (fetched, "complete")]


# -- as_of: the driver's moment ---------------------------------------------------------------------------------------

def test_a_recheck_describes_the_household_at_the_moment_it_is_given(agencies):
    app = create_request(sample(7, sources=["household"]))
    assert run_inline(app).status == "published"
    as_of = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.timezone.utc)  # e.g. the nightly run's logical date
    assert recheck_batch([app], run_id="as-of-given", as_of=as_of)["published"] == 1
    (recheck,) = _rechecks(app, "as-of-given")
    record, content = record_of_request(recheck)
    assert record.as_of == as_of and content["as_of"] == as_of.isoformat()
    assert record.recorded_at > as_of  # transaction time stays the hub's own


def test_a_recheck_without_a_moment_describes_the_household_as_its_agencies_last_answered(agencies):
    app = create_request(sample(7, sources=["household"]))
    assert run_inline(app).status == "published"
    assert recheck_batch([app], run_id="as-of-fetched")["published"] == 1
    (recheck,) = _rechecks(app, "as-of-fetched")
    record, content = record_of_request(recheck)
    (batch,) = _batches(recheck, "household")
    assert record.as_of == batch.fetched_at and content["as_of"] == batch.fetched_at.isoformat()
    assert recheck_batch([app], run_id="as-of-fetched")["published"] == 1  # retried: the same record
    assert record_of_request(recheck)[0].id == record.id


def _rechecks(app: str, run_id: str) -> list[str]:
    return start_rechecks([app], run_id)  # found again: created once per application and run


def test_a_record_keeps_its_moment_in_utc_and_refuses_one_without_a_time_zone(agencies):
    request_id = create_request(sample(0, sources=["household"]))
    validate_batches(fetch_many([request_id]), run_id="as-of-utc")
    cross_check(request_id, run_id="as-of-utc")
    with pytest.raises(ValueError, match="timezone"):
        publish_record(request_id, as_of=dt.datetime(2026, 11, 30, 10, 0))
    shanghai = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    publish_record(request_id, as_of=shanghai)
    record, content = record_of_request(request_id)
    assert record.as_of == dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.timezone.utc)
    assert content["as_of"] == "2026-11-30T02:00:00+00:00"
