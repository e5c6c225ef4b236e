"""The bulk fetch of a re-check (``hub.stages.pipeline.fetch_many``) does exactly what fetching each request's sources one
by one does: the same gate decisions, agency calls, batches, rows and ledger entries."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from hub.stages.intake import create_request
from hub.stages.pipeline import fetch_many, fetch_source, replay_batch, validate_batches
from hub.stages.reverify import recheck_batch, start_recheck, start_rechecks
from core.store import ConsentDecision, FetchBatch, LedgerEvent, Request, RequestMember, session
from tests.support.store import stored_batches
from tests.support.households import (ALL_SOURCES as ALL, applied as _applied, household_of as _household,
                                      household_with_several_members as _household_with_several_members, sample)


def _partial(k: int) -> dict:
    """Household k's request with its last member's consent left out (the gate refuses that member)."""
    doc = sample(k, sources=list(ALL))
    doc["authorization"]["consents"].pop()
    return doc


def _ledger(request_id: str) -> Counter:
    with session() as s:
        return Counter((e.kind, e.payload.get("source"), e.payload.get("person_ref"))
                       for e in s.scalars(select(LedgerEvent)) if e.payload.get("request_id") == request_id)


def _decisions(request_id: str) -> list[tuple]:
    with session() as s:
        return sorted((d.person_ref, d.source, d.allowed, d.reason) for d in s.scalars(
            select(ConsentDecision).where(ConsentDecision.request_id == request_id)))


def test_fetching_many_requests_at_once_stores_what_fetching_each_source_stores(agencies):
    k1, k2 = _household_with_several_members(), _household("dibao")
    one_by_one = [create_request(_partial(k1)), create_request(sample(k2, sources=list(ALL)))]
    together = [create_request(_partial(k1)), create_request(sample(k2, sources=list(ALL)))]
    for request_id in one_by_one:
        for source in ALL:
            fetch_source(request_id, source)
    calls = {k: v["requests"] for k, v in agencies.stats().items()}
    pending = fetch_many(together, workers=4)
    assert sum(v["requests"] for v in agencies.stats().values()) - sum(calls.values()) == sum(
        1 for r in one_by_one for b in stored_batches(r).values() if b["requested"])  # the same calls, no more
    for a, b in zip(one_by_one, together):
        mine, theirs = stored_batches(a), stored_batches(b)
        assert set(mine) == set(theirs) == set(ALL)
        for source in ALL:
            drop = ("id", "response_sha256", "exchange_id")  # derived from the request, or None either way
            expected = {k: v for k, v in mine[source].items() if k not in drop}
            assert {k: v for k, v in theirs[source].items() if k not in drop} == expected, source
        assert _decisions(a) == _decisions(b)
        assert _ledger(a) == _ledger(b)
    assert any(d[2] is False for d in _decisions(together[0]))  # the member without consent was refused
    with session() as s:
        stored = {b.id: b for b in s.scalars(select(FetchBatch).where(FetchBatch.request_id.in_(together)))}
        assert all(s.get(Request, r).status == "running" for r in together)
    assert set(pending) == {i for i, b in stored.items() if b.status != "refused"}
    for batch_id in pending:  # the raw answers replay to the stored rows
        source = stored[batch_id].source
        assert replay_batch(batch_id) == [r for _, r in stored_batches(stored[batch_id].request_id)[source]["rows"]]


def test_fetching_again_resumes_and_asks_no_agency_twice(agencies):
    request_id = create_request(sample(_household("dibao", 1), sources=list(ALL)))
    first = fetch_many([request_id])
    served = sum(v["requests"] for v in agencies.stats().values())
    assert sorted(fetch_many([request_id])) == sorted(first)  # not validated yet: the same batches, no new calls
    assert sum(v["requests"] for v in agencies.stats().values()) == served
    validate_batches(first, run_id="test")
    assert fetch_many([request_id]) == []
    with session() as s:
        assert len(s.scalars(select(FetchBatch).where(FetchBatch.request_id == request_id)).all()) == len(ALL)


def test_an_unknown_request_stops_the_bulk_fetch_before_any_agency_is_asked(agencies):
    request_id = create_request(sample(3, sources=list(ALL)))
    served = sum(v["requests"] for v in agencies.stats().values())
    with pytest.raises(LookupError):
        fetch_many([request_id, "0" * 32])
    assert sum(v["requests"] for v in agencies.stats().values()) == served
    with session() as s:
        assert not s.scalars(select(FetchBatch).where(FetchBatch.request_id == request_id)).first()


def test_rechecks_are_started_once_with_their_applications_members(agencies):
    apps = [_applied(_household("dibao", 3)), _applied(_household("dibao", 4))]
    ids = start_rechecks(apps, "run-a")
    assert start_rechecks(apps, "run-a") == ids and start_recheck(apps[1], "run-a") == ids[1]
    assert start_rechecks(apps, "run-b") != ids
    with session() as s:
        for app, recheck in zip(apps, ids):
            req = s.get(Request, recheck)
            assert (req.kind, req.parent_id) == ("recheck", app)
            refs = lambda r: sorted(m.person_ref for m in s.scalars(  # noqa: E731
                select(RequestMember).where(RequestMember.request_id == r)))
            assert refs(recheck) == refs(app)
        started = [e for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "recheck.started"))
                   if e.payload["run_id"] == "run-a"]
    assert sorted(e.payload["request_id"] for e in started) == sorted(ids)


def test_a_batch_that_cannot_be_fetched_together_is_fetched_household_by_household(agencies, monkeypatch):
    import hub.stages.pipeline

    apps = [_applied(_household("dibao", 5)), _applied(_household("dibao", 6))]

    real = hub.stages.pipeline.fetch_many

    def broken(request_ids, **kw):  # many households at once break; one at a time works
        if len(request_ids) > 1:
            raise RuntimeError("bulk fetch broke")
        return real(request_ids, **kw)

    monkeypatch.setattr(hub.stages.pipeline, "fetch_many", broken)
    summary = recheck_batch([*apps], run_id="fallback")
    assert summary["published"] == 2 and summary["failed"] == 0  # the bulk fetch broke: fetched one by one
    summary = recheck_batch([*apps, "f" * 32], run_id="fallback-2")
    assert summary["published"] == 2 and summary["failed"] == 1  # the unknown application alone fails
