"""一证通办: a household's members from one ID number, against the simulated agencies over HTTP."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import func, select

from agencies.population import household_in_population
from agencies.server import AgencyServer
from hub import lookup
from hub.lookup import BadLookup, LookupUnavailable, Member, NotRegistered, household_members
from hub.store import LedgerEvent, session
from schemas.codes import id_check_char
from tests.connectors.conftest import FAST

SEED, N = 7, 50  # as the `agencies` fixture
EVIDENCE = hashlib.sha256(b"signed authorization form").hexdigest()
ARGS = dict(department="MZ-210302", client_id="client-1", purpose="dibao", evidence_sha256=EVIDENCE)
STRANGER = "21038119500101123" + id_check_char("21038119500101123")  # valid, in no generated household


def _entries() -> list[LedgerEvent]:
    with session() as s:
        return list(s.scalars(select(LedgerEvent).where(LedgerEvent.kind == lookup.LEDGER_KIND)
                              .order_by(LedgerEvent.seq)))


def _count() -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(LedgerEvent).where(LedgerEvent.kind == lookup.LEDGER_KIND))


def _no_personal_data(payload: dict, people) -> None:
    text = json.dumps(payload, ensure_ascii=False)
    for p in people:
        assert p.id_number not in text and p.id_number.lower() not in text and p.name not in text


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(lookup, "POLICY", FAST)


def test_a_known_applicant_gets_exactly_the_members_of_their_household(agencies):
    from hub.crypto import keyring

    hh = household_in_population(SEED, N, 13)  # head, spouse (moved out), daughter
    applicant = next(p for p in hh.members if p.relation == "daughter")
    members = household_members(applicant.id_number, **ARGS)
    assert all(isinstance(m, Member) for m in members)
    expected = {p.id_number: p for p in hh.members}
    assert sorted(m.id_number for m in members) == sorted(expected)
    for m in members:
        p = expected[m.id_number]
        assert (m.name, m.sex, m.birth_date, m.relation, m.status) == \
            (p.name, p.sex, p.birth_date, p.relation, p.status)
    # normal status first, the others kept with their status
    assert [m.relation for m in members] == ["head", "daughter", "spouse"]
    assert [m.status for m in members] == ["normal", "normal", "moved_out"]
    assert applicant.id_number not in repr(members) and applicant.name not in repr(members)

    entry = _entries()[-1]
    keys = keyring()
    assert entry.payload["outcome"] == "found" and entry.payload["failure"] is None
    assert entry.payload["applicant_ref"] == keys.pseudonym(applicant.id_number)
    assert entry.payload["member_refs"] == [keys.pseudonym(m.id_number) for m in members]
    assert {k: entry.payload[k] for k in ARGS} == ARGS
    _no_personal_data(entry.payload, hh.members)
    stats = agencies.stats()["household"]
    assert stats["member_queries"] == stats["served"] == 1


def test_relations_and_statuses_follow_household_registration(agencies):
    hh = household_in_population(SEED, N, 3)  # a deceased parent among them
    members = household_members(hh.members[0].id_number, **ARGS)
    assert sorted(m.relation for m in members) == sorted(p.relation for p in hh.members)
    assert [m.status for m in members][-1] == "deceased"
    assert sum(m.relation == "head" for m in members) == 1


def test_an_unknown_person_is_not_registered_and_logged_as_not_found(agencies):
    before = _count()
    with pytest.raises(NotRegistered) as exc:
        household_members(STRANGER, **ARGS)
    assert STRANGER not in str(exc.value)
    entries = _entries()
    assert len(entries) == before + 1
    assert entries[-1].payload["outcome"] == "not_found" and entries[-1].payload["member_refs"] == []
    assert STRANGER not in json.dumps(entries[-1].payload)


def test_a_wrong_check_character_is_refused_before_any_call(agencies):
    good = household_in_population(SEED, N, 0).members[0].id_number
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    before = _count()
    with pytest.raises(BadLookup, match="id_number") as exc:
        household_members(bad, **ARGS)
    assert bad not in str(exc.value) and bad[:17] not in str(exc.value)
    assert agencies.stats()["household"]["requests"] == 0 and _count() == before


@pytest.mark.parametrize("evidence", ["", "abc", EVIDENCE[:63], EVIDENCE + "0", "g" * 64, None])
def test_a_bad_evidence_hash_is_refused(agencies, evidence):
    applicant = household_in_population(SEED, N, 0).members[0].id_number
    with pytest.raises(BadLookup, match="evidence_sha256") as exc:
        household_members(applicant, **{**ARGS, "evidence_sha256": evidence})
    assert applicant not in str(exc.value)
    assert agencies.stats()["household"]["requests"] == 0


@pytest.mark.parametrize("field,value", [("purpose", "shopping"), ("department", "mz 1"), ("client_id", "")])
def test_other_bad_input_is_refused(agencies, field, value):
    with pytest.raises(BadLookup, match=field):
        household_members(household_in_population(SEED, N, 0).members[0].id_number, **{**ARGS, field: value})


def test_a_down_household_agency_is_unavailable_and_logged(fast, monkeypatch, caplog):
    server = AgencyServer.from_hub_home(households=N, seed=SEED, faults="down:household").start()
    monkeypatch.setenv("HUB_AGENCIES_URL", server.url)
    hh = household_in_population(SEED, N, 0)
    before = _count()
    try:
        with pytest.raises(LookupUnavailable) as exc:
            household_members(hh.members[0].id_number, **ARGS)
    finally:
        server.stop()
    assert exc.value.source == "household" and exc.value.failure in ("UNREACHABLE", "CIRCUIT_OPEN")
    assert str(exc.value) == f"household: {exc.value.failure}"
    entries = _entries()
    assert len(entries) == before + 1
    assert entries[-1].payload["outcome"] == "unavailable" and entries[-1].payload["failure"] == exc.value.failure
    _no_personal_data(entries[-1].payload, hh.members)
    assert all(p.id_number not in caplog.text and p.name not in caplog.text for p in hh.members)


def test_an_unusable_answer_is_unavailable_not_a_wrong_household(fast, monkeypatch):
    server = AgencyServer.from_hub_home(households=N, seed=SEED, faults="dirty",
                                        fault_rates={"row": 0.0, "response": 0.0, "check_digit": 1.0}).start()
    monkeypatch.setenv("HUB_AGENCIES_URL", server.url)
    hh = household_in_population(SEED, N, 5)
    try:
        with pytest.raises(LookupUnavailable, match="BAD_RESPONSE"):
            household_members(hh.members[0].id_number, **ARGS)
    finally:
        server.stop()
    entry = _entries()[-1]
    assert (entry.payload["outcome"], entry.payload["failure"]) == ("unavailable", "BAD_RESPONSE")
    _no_personal_data(entry.payload, hh.members)
