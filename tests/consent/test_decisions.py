"""Decisions recorded: every decision the gate makes through consent.decisions is a stored row and a ledger entry."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from consent.authorizations import revoke, watermark
from consent.decisions import Asker, ConsentWatch, DecisionBatch, ask, batch
from consent.gate import Allow, Reason, Refuse
from core.store import Authorization, ConsentDecision, LedgerEvent, Request, RequestMember, session, utcnow
from hub.stages.intake import create_request
from tests.support.households import sample


def _request(k: int, sources=("household", "tax")) -> tuple[str, list[str]]:
    doc = sample(k, sources=sources)
    request_id = create_request(doc)
    with session() as s:
        refs = list(s.scalars(select(RequestMember.person_ref).where(RequestMember.request_id == request_id)
                              .order_by(RequestMember.id)))
    return request_id, refs


def _asker(request_id: str) -> Asker:
    with session() as s:
        return Asker.of(s.get(Request, request_id))


def _rows(request_id: str) -> list[ConsentDecision]:
    with session() as s:
        return list(s.scalars(select(ConsentDecision).where(ConsentDecision.request_id == request_id)
                              .order_by(ConsentDecision.id)))


def _entries(request_id: str) -> list[LedgerEvent]:
    with session() as s:
        return [e for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind.in_(("consent.allowed",
                                                                                      "consent.refused")))
                                     .order_by(LedgerEvent.seq)) if e.payload["request_id"] == request_id]


def test_each_decision_is_returned_stored_and_logged_with_its_basis():
    request_id, refs = _request(30)
    asker = _asker(request_id)
    moment = utcnow().replace(microsecond=0)
    with session() as s:
        decided = ask(s, asker, refs + ["p_stranger"], ["household", "tax"], moment)
    assert len(decided) == 2 * (len(refs) + 1)
    assert [(d.source, d.person_ref) for d in decided] == [(src, ref) for src in ("household", "tax")
                                                          for ref in refs + ["p_stranger"]]
    assert all(isinstance(a, Allow) for a in decided.allows)
    assert {(r.person_ref, r.reason) for r in decided.refusals} == {("p_stranger", Reason.MEMBER_NOT_NAMED)}
    rows, entries = _rows(request_id), _entries(request_id)
    assert [(r.person_ref, r.source, r.allowed, r.reason, r.authorization_id) for r in rows] == [
        (d.person_ref, d.source, d.allowed, d.reason.value, d.authorization_id) for d in decided]
    assert all(r.purpose == asker.purpose and r.decided_at == moment for r in rows)
    assert [e.kind for e in entries] == ["consent.allowed" if d.allowed else "consent.refused" for d in decided]
    for d, e in zip(decided, entries):
        assert e.payload == {"request_id": request_id, "person_ref": d.person_ref, "source": d.source,
                             "purpose": asker.purpose, "reason": d.reason.value,
                             "authorization_id": d.authorization_id, "moment": moment.isoformat()}
        assert e.recorded_at == moment


def test_decisions_asked_again_are_marked_and_a_batch_records_them_all_at_the_end():
    first, refs1 = _request(31)
    second, refs2 = _request(32)
    moment = utcnow()
    with session() as s:
        with batch(s, moment) as decisions:
            one = decisions.ask(_asker(first), refs1, "household")
            two = decisions.ask(_asker(second), refs2, "tax", again=True)
            assert s.scalar(select(func.count()).select_from(ConsentDecision).where(
                ConsentDecision.request_id.in_((first, second)))) == 0  # not yet: at the end of the block
    assert [r.person_ref for r in _rows(first)] == [d.person_ref for d in one] == refs1
    assert [r.person_ref for r in _rows(second)] == [d.person_ref for d in two] == refs2
    assert not any("asked_again" in e.payload for e in _entries(first))
    assert all(e.payload["asked_again"] is True for e in _entries(second))


def test_nothing_is_recorded_when_the_block_fails():
    request_id, refs = _request(33)
    with pytest.raises(RuntimeError):
        with session() as s:
            with batch(s, utcnow()) as decisions:
                decisions.ask(_asker(request_id), refs, "household")
                raise RuntimeError("the fetch failed before its decisions were stored")
    assert _rows(request_id) == [] and _entries(request_id) == []


def test_a_batch_records_only_what_it_has_not_recorded_yet():
    request_id, refs = _request(34)
    with session() as s:
        decisions = DecisionBatch(s, utcnow())
        decisions.ask(_asker(request_id), refs, "household")
        decisions.record()
        decisions.record()
    assert len(_rows(request_id)) == len(_entries(request_id)) == len(refs)


def test_the_watch_asks_again_only_after_a_revocation_of_the_askers_consent():
    request_id, refs = _request(35)
    other, _ = _request(36)
    asker = _asker(request_id)
    with session() as s:
        watch = ConsentWatch(watermark(s))
        allows = ask(s, asker, refs, "household", utcnow()).allows
    assert allows and watch.still_allowed(asker, allows) is allows  # no revocation: nothing asked
    with session() as s:
        revoke(s, s.scalars(select(Authorization.id).where(Authorization.request_id == other)).one())
    assert watch.still_allowed(asker, allows) is allows  # another request's revocation: nothing asked
    with session() as s:
        auth_id = s.scalars(select(Authorization.id).where(Authorization.request_id == request_id)).one()
        revoke(s, auth_id, person_ref=allows[0].person_ref, source="household")
    kept = watch.still_allowed(asker, allows)
    assert [a.person_ref for a in kept] == [a.person_ref for a in allows[1:]]
    again = [e.payload for e in _entries(request_id) if e.payload.get("asked_again")]
    assert [(p["person_ref"], p["reason"]) for p in again] == [
        (a.person_ref, Reason.REVOKED.value if a is allows[0] else Reason.ALLOWED.value) for a in allows]
    with session() as s:
        assert watch.withdrawn(s, asker, allows) == {allows[0].person_ref}


def test_an_asker_is_its_request():
    request_id, _ = _request(37)
    with session() as s:
        req = s.get(Request, request_id)
        assert Asker.of(req) == Asker(req.id, req.id, req.purpose, req.department)


def test_the_moment_must_be_aware():
    request_id, refs = _request(38)
    with session() as s, pytest.raises(ValueError):
        ask(s, _asker(request_id), refs, "household", dt.datetime(2026, 6, 1))
    assert _rows(request_id) == []


def test_refusals_are_the_gates():
    request_id, refs = _request(39, sources=("household",))
    with session() as s:
        decided = ask(s, _asker(request_id), refs, "tax", utcnow())
    assert decided.allows == [] and all(isinstance(d, Refuse) for d in decided)
    assert {d.reason for d in decided} == {Reason.SOURCE_NOT_IN_SCOPE}
