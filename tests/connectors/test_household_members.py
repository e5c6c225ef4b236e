"""HouseholdSource.members_of: 户成员查询 through the shared transport, against the simulated agency."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from agencies.population import household_in_population
from agencies.server import AgencyServer
from connectors.base import AgencyError, Failure
from connectors.household import HouseholdSource
from connectors.registry import connector
from schemas.codes import id_check_char
from tests.support.connectors import FAST

SEED, N = 7, 50


def _source(server: AgencyServer, policy=FAST) -> HouseholdSource:
    source = connector("household", server.base_url("household"), policy=policy)
    assert isinstance(source, HouseholdSource)
    return source


def test_members_of_returns_canonical_rows_of_the_whole_household(agencies):
    hh = household_in_population(SEED, N, 3)
    rows = _source(agencies).members_of(hh.members[2].id_number, auth_ref="lookup-1")
    assert rows == [{"id_number": p.id_number, "name": p.name, "sex": p.sex, "birth_date": p.birth_date.isoformat(),
                     "household_no": hh.household_no, "relation": p.relation, "status": p.status,
                     "address_code": p.address_code} for p in hh.members]


def test_an_unknown_person_is_an_empty_list(agencies):
    stranger = "21038119500101123" + id_check_char("21038119500101123")
    assert _source(agencies).members_of(stranger, auth_ref="lookup-1") == []
    assert agencies.stats()["household"]["member_queries"] == 1


def test_truncated_answers_are_retried_like_fetch():
    server = AgencyServer.from_hub_home(households=N, seed=SEED, faults="truncated", fault_rates={"truncated": 0.3})
    server.start()
    try:
        source = _source(server, dataclasses.replace(FAST, retries=8))
        for k in range(8):
            hh = household_in_population(SEED, N, k)
            assert len(source.members_of(hh.members[0].id_number, auth_ref="lookup-1")) == len(hh.members)
        stats = server.stats()["household"]
        assert stats["truncated"] >= 1 and stats["requests"] == 8 + stats["truncated"]
    finally:
        server.stop()


def test_a_down_agency_raises_the_connectors_error_without_personal_data(caplog):
    server = AgencyServer.from_hub_home(households=N, seed=SEED, faults="down:household").start()
    hh = household_in_population(SEED, N, 0)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(AgencyError) as exc:
            _source(server, dataclasses.replace(FAST, breaker_threshold=3)).members_of(hh.members[0].id_number,
                                                                                         auth_ref="lookup-1")
    finally:
        server.stop()
    assert exc.value.source == "household" and exc.value.failure in (Failure.UNREACHABLE, Failure.CIRCUIT_OPEN)
    for p in hh.members:
        assert p.id_number not in str(exc.value) and p.id_number not in caplog.text and p.name not in caplog.text
