"""Batch exchange (批量核对): a re-check asks each agency about the persons of many households in one call, each person
under the reference of their own authorization, and splits the answer back per household. What each household's
batch holds is what a fetch of its own would hold; an agency that rejects a reference, shuffles persons across
households, leaves a person out, names a person not asked for, cuts or mis-encodes its answer leaves each household's
source complete, incomplete or unavailable with its reason, never complete with another household's rows; the raw
answers are kept once, replay to each batch's rows and are purged with the last batch that needs them."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

from agencies.server import Agency
from consent.authorizations import revoke
from core.store import (
    Authorization,
    ExchangeAnswer,
    FetchBatch,
    LedgerEvent,
    Request,
    RequestMember,
    SourceRow,
    session,
    utcnow,
)
from hub.stages.intake import create_request
from hub.stages.maintenance import purge_raw_data
from hub.stages.pipeline import fetch_many, replay_batch, validate_batches
from tests.support.households import ALL_SOURCES as ALL, household_of, sample
from tests.support.servers import serve_agencies
from tests.support.store import stored_batches


@pytest.fixture(autouse=True)
def _own(own_store):
    """Each test reads every batch and exchange of the store: a store of its own."""


def _requests(n: int, first: int = 0, partial: bool = False, lives: tuple[int, ...] = ()) -> list[str]:
    """Requests for ``n`` households from ``first`` on (with ``partial``, the first's last member without consent;
    ``lives``: the data life of each authorization, 30 days where not given)."""
    out = []
    for i, k in enumerate(range(first, first + n)):
        doc = sample(k, sources=list(ALL))
        if partial and i == 0 and len(doc["authorization"]["consents"]) > 1:
            doc["authorization"]["consents"].pop()
        if i < len(lives):
            doc["authorization"]["data_life_days"] = lives[i]
        out.append(create_request(doc))
    return out


def _members(request_id: str) -> set[str]:
    with session() as s:
        return set(s.scalars(select(RequestMember.person_ref).where(RequestMember.request_id == request_id)))


def _calls(server) -> int:
    return sum(v["requests"] for v in server.stats().values())


def _own_rows_only(request_ids: list[str]) -> list[tuple[str, str, str | None]]:
    """Every batch's (source, status, reason), after checking that it holds no row of a person outside its household
    but quarantined ones, and that its stored raw answers replay to exactly its rows."""
    seen = []
    for request_id in request_ids:
        members = _members(request_id)
        for source, b in stored_batches(request_id).items():
            kept = {ref for n, (ref, _) in enumerate(b["rows"]) if n not in b["quarantined"]}
            assert kept <= members, (source, "another household's rows")
            assert replay_batch(b["id"]) == [row for _, row in b["rows"]], source
            seen.append((source, b["status"], b["reason"]))
    return seen


def test_each_household_of_an_exchange_holds_what_its_own_fetch_would(agencies):
    one_by_one, together = _requests(5, partial=True), _requests(5, partial=True)
    before = _calls(agencies)
    fetch_many(one_by_one, workers=4)
    alone = _calls(agencies) - before
    before, batch_queries = _calls(agencies), sum(v["batch_queries"] for v in agencies.stats().values())
    fetch_many(together, workers=4, exchange=True)
    exchanged = _calls(agencies) - before
    # one call per agency (every source's limit holds five households), against one per household and source
    assert exchanged == len(ALL) and alone > 3 * exchanged
    assert sum(v["batch_queries"] for v in agencies.stats().values()) - batch_queries == len(ALL)
    for a, b in zip(one_by_one, together):
        mine, theirs = stored_batches(a), stored_batches(b)
        assert set(mine) == set(theirs) == set(ALL)
        for source in ALL:
            drop = ("id", "exchange_id", "response_sha256")  # the exchange's answers, not the household's own
            assert {k: v for k, v in theirs[source].items() if k not in drop} == \
                   {k: v for k, v in mine[source].items() if k not in drop}, source
            assert mine[source]["exchange_id"] is None
            assert (theirs[source]["exchange_id"] is not None) == (theirs[source]["status"] != "refused")
    _own_rows_only(together)
    with session() as s:
        exchanges = s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "fetch.exchanged")).all()
        assert len(exchanges) == len(ALL)
        answers = {(a.exchange_id, a.sha256) for a in s.scalars(select(ExchangeAnswer))}
        for e in exchanges:  # every raw answer's hash is in the ledger, and every batch names the exchange's hashes
            assert {(e.payload["exchange_id"], h) for h in e.payload["response_hashes"]} <= answers
            for batch_id in e.payload["batches"]:
                completed = [x for x in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "fetch.completed"))
                             if x.payload["batch_id"] == batch_id]
                assert [x.payload["response_hashes"] for x in completed] == [e.payload["response_hashes"]]
        assert s.scalar(select(func.count()).select_from(ExchangeAnswer)) == len(ALL)  # kept once, not per household


def test_the_exchanged_batches_validate_and_publish_as_a_households_own(agencies):
    from hub.stages.reverify import recheck_batch
    from tests.support.households import applied

    apps = [applied(household_of("dibao", i)) for i in range(3)]
    summary = recheck_batch(apps, run_id="exchange")
    assert summary["published"] == 3 and summary["incomplete"] == 0 and summary["failed"] == 0
    with session() as s:
        rechecks = s.scalars(select(Request.id).where(Request.kind == "recheck")).all()
        batches = s.scalars(select(FetchBatch).where(FetchBatch.request_id.in_(rechecks))).all()
        assert batches and all(b.exchange_id and b.validated and b.status == "complete" for b in batches)


@contextmanager
def _agencies(faults: str, rates: dict | None = None):
    gen = serve_agencies(faults, rates)
    server = next(gen)
    try:
        yield server
    finally:
        gen.close()


def test_a_rejected_reference_leaves_its_household_incomplete_and_not_the_others(agencies):
    request_ids = _requests(8, first=10)
    with _agencies("rejecting") as server:
        fetch_many(request_ids, exchange=True)
        assert all(0 < v["batch_queries"] <= 2 for v in server.stats().values())  # a call for many households
    outcomes = _own_rows_only(request_ids)
    reasons = Counter(reason for _, _, reason in outcomes)
    assert reasons["REFERENCE_REJECTED"] and reasons[None]  # some persons rejected; households untouched complete
    with session() as s:
        for b in s.scalars(select(FetchBatch).where(FetchBatch.request_id.in_(request_ids))):
            if b.reason == "REFERENCE_REJECTED":
                assert b.status in ("incomplete", "unavailable") and "unanswered" in b.members.values()
                silent = {ref for ref, outcome in b.members.items() if outcome == "unanswered"}
                rows = s.scalars(select(SourceRow).where(SourceRow.batch_id == b.id)).all()
                assert not {r.person_ref for r in rows} & silent  # nothing of a person whose reference was rejected
            elif b.status == "complete":
                assert "unanswered" not in b.members.values()


def test_persons_shuffled_across_households_are_never_taken_as_the_other_households(agencies):
    request_ids = _requests(6, first=20)
    with _agencies("shuffled", {"shuffled": 1.0}):
        fetch_many(request_ids, exchange=True)
    outcomes = _own_rows_only(request_ids)
    mismatched = [o for o in outcomes if o[2] == "BATCH_MISMATCH"]
    assert mismatched and all(status in ("incomplete", "unavailable") for _, status, _ in mismatched)
    for source, status, reason in outcomes:  # what still completes had no rows to shuffle
        if status == "complete":
            assert reason is None
    with session() as s:
        for b in s.scalars(select(FetchBatch).where(FetchBatch.request_id.in_(request_ids),
                                                    FetchBatch.reason == "BATCH_MISMATCH")):
            left_out = {ref for ref, outcome in b.members.items() if outcome == "unanswered"}
            assert b.exchange["excluded"] and left_out and left_out <= set(b.exchange["excluded"])


@pytest.mark.parametrize("faults,rates,reason", [
    ("truncated", {"truncated": 1.0}, "UNREACHABLE"),
    ("dirty", {"row": 0.0, "response": 0.0, "encoding": 1.0}, "BAD_RESPONSE"),
])
def test_a_cut_or_mis_encoded_batch_answer_leaves_every_household_unavailable(agencies, faults, rates, reason):
    request_ids = _requests(4, first=30)
    with _agencies(faults, rates):
        fetch_many(request_ids, exchange=True)
    outcomes = Counter((status, why) for _, status, why in _own_rows_only(request_ids) if status != "refused")
    # every answer cut, or re-encoded (an ASCII-only answer reads the same in either encoding: it stays whole)
    assert outcomes[("unavailable", reason)] >= 8 * len(request_ids)
    assert set(outcomes) <= {("unavailable", reason), ("complete", None)}


def test_a_person_left_out_of_a_batch_answer_is_not_answered_and_the_others_are(agencies):
    request_ids = _requests(4, first=34)
    with _agencies("dirty", {"row": 0.0, "response": 0.0, "omitted": 1.0}):
        pending = fetch_many(request_ids, exchange=True)
    validate_batches(pending, run_id="omitted")
    household = [(b["status"], b["reason"]) for r in request_ids for s, b in stored_batches(r).items() if s == "household"]
    assert household.count(("incomplete", "MEMBERS_NOT_ANSWERED")) == 1  # the one person left out of the exchange
    assert household.count(("complete", None)) == len(request_ids) - 1
    _own_rows_only(request_ids)


def test_a_person_not_asked_for_is_quarantined_where_it_came_or_sinks_an_exchange_it_cannot_be_placed_in(
        agencies, monkeypatch):
    stranger = sample(45)["members"][0]["id_number"]
    real = Agency.answer_batch
    placed = {"under": "first"}

    def answer_batch(self, ids, refs, page, nonce=""):  # the agency adds a person nobody asked about
        if self.spec.key != "tax":
            return real(self, ids, refs, page, nonce)
        if placed["under"] == "first":
            return real(self, ids + [stranger], refs + [refs[0]], page, nonce)
        status, body, ctype, headers = real(self, ids + [stranger], refs + ["no-such-reference"], page, nonce)
        return status, body, ctype, headers

    monkeypatch.setattr(Agency, "answer_batch", answer_batch)
    request_ids = _requests(3, first=36)
    pending = fetch_many(request_ids, exchange=True)
    validate_batches(pending, run_id="stranger")
    tax = [stored_batches(r)["tax"] for r in request_ids]
    # under the first household's reference: its row, not asked for, is quarantined there; the others are whole
    assert [(b["status"], b["reason"]) for b in tax] == [("incomplete", "ROWS_QUARANTINED")] + \
           [("complete", None)] * (len(request_ids) - 1)
    _own_rows_only(request_ids)

    placed["under"] = "none"
    request_ids = _requests(3, first=39)
    fetch_many(request_ids, exchange=True)
    tax = [stored_batches(r)["tax"] for r in request_ids]  # under no reference sent: whose rows they are is unknown
    assert {(b["status"], b["reason"], len(b["rows"])) for b in tax} == {("unavailable", "COUNT_MISMATCH", 0)}


def test_a_member_withdrawing_during_an_exchange_is_left_out_and_the_others_are_answered(agencies):
    request_ids = _requests(3, first=42)
    with session() as s:
        auth = s.scalars(select(Authorization).where(Authorization.request_id == request_ids[1])).first()
        ref = s.scalars(select(RequestMember.person_ref).where(RequestMember.request_id == request_ids[1])).first()
    fired = []

    def withdraw(ids, page):  # the bank's exchange is in flight when the member withdraws
        if not fired:
            fired.append(len(ids))
            with session() as s:
                revoke(s, auth.id, person_ref=ref)

    agencies.agencies["bank"].on_query = withdraw
    pending = fetch_many(request_ids, exchange=True)
    assert fired and fired[0] > 1
    banks = [stored_batches(r)["bank"] for r in request_ids]
    assert banks[1]["members"][ref] == "withdrawn" and banks[1]["reason"] == "CONSENT_WITHDRAWN"
    assert [b["reason"] for i, b in enumerate(banks) if i != 1] == [None, None]
    validate_batches(pending, run_id="withdrawn")
    with session() as s:  # what the agency answered about them while they withdrew is kept out of the record
        assert not s.scalars(select(SourceRow).where(SourceRow.batch_id == banks[1]["id"], SourceRow.person_ref == ref,
                                                     SourceRow.valid.is_(True))).first()
    _own_rows_only(request_ids)


def test_an_exchanges_answers_are_purged_with_the_last_batch_that_needs_them(agencies):
    request_ids = _requests(2, first=0, lives=(30, 60))  # the second household's data lives longer
    fetch_many(request_ids, exchange=True)
    with session() as s:
        answers = s.scalar(select(func.count()).select_from(ExchangeAnswer))
    assert answers == len(ALL)
    first = purge_raw_data(utcnow() + dt.timedelta(days=31))
    assert first["batches"] == len(ALL) and first["raw_answers"] == 0  # the second household still needs them
    kept = stored_batches(request_ids[1])
    for source, b in kept.items():
        assert replay_batch(b["id"]) == [row for _, row in b["rows"]]
    second = purge_raw_data(utcnow() + dt.timedelta(days=61))
    assert second["batches"] == len(ALL) and second["raw_answers"] == len(ALL)
    with session() as s:
        assert s.scalar(select(func.count()).select_from(ExchangeAnswer)) == 0
        purged = [e.payload for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "data.purged"))]
    assert sum(p["raw_answers"] for p in purged) == len(ALL) and all(p.get("exchange_id") for p in purged)
