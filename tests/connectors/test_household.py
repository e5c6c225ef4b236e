"""The household connector against the simulated agency: gated, batched, failures classified."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from agencies.population import household_in_population


def household(seed, k):
    return household_in_population(seed, 50, k)

from connectors.base import AgencyError, Failure, classify, Action
from connectors.auth import Credential
from connectors.household import HouseholdSource
from connectors.registry import base_url, connector
from consent.gate import AuthorizationView, MemberConsent, decide

NOW = dt.datetime.now(dt.timezone.utc)


def _allows(people, source="household"):
    members = {f"p{i}": MemberConsent(f"p{i}", frozenset({source}), adult_from=dt.date(1900, 1, 1))
               for i in range(len(people))}
    auths = [AuthorizationView("a1", "MZ-210302", "dibao", NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1),
                               members)]
    allows = [decide(f"p{i}", source, "dibao", "MZ-210302", NOW, auths) for i in range(len(people))]
    return allows, {f"p{i}": p.id_number for i, p in enumerate(people)}


def test_fetch_maps_the_agency_codes_to_canonical_rows(agencies):
    people = household(7, 2).members
    allows, ids = _allows(people)
    result = connector("household", base_url("household", agencies.url)).fetch(allows, ids, auth_ref="r1")
    assert result.status == "complete" and result.missing == 0
    assert {r["id_number"] for r in result.rows} == {p.id_number for p in people}
    row = next(r for r in result.rows if r["id_number"] == people[0].id_number)
    assert row["relation_code"] == "02" and row["household_no"].startswith(people[0].address_code)
    assert len(result.response_sha256) == 64


def test_batches_respect_the_agency_limit(agencies):
    people = [m for k in range(50) for m in household(7, k).members]
    assert 100 < len(people) <= 200
    allows, ids = _allows(people)
    result = connector("household", base_url("household", agencies.url)).fetch(allows, ids, auth_ref="r1")
    assert result.status == "complete" and len(result.rows) == len(people)
    assert agencies.stats()["household"]["served"] == 2  # 100, then the rest


def test_unknown_persons_make_the_result_incomplete(agencies):
    stranger = "11010519491231002X"  # valid, registered in Beijing: not in the Anshan population
    people = household(7, 2).members
    allows, ids = _allows(people + [people[0]])
    ids["p" + str(len(people))] = stranger
    result = connector("household", base_url("household", agencies.url)).fetch(allows, ids, auth_ref="r1")
    assert result.status == "incomplete" and result.reason == "MEMBERS_NOT_FOUND" and result.missing == 1


def test_fetch_without_allow_decisions_is_a_type_error(agencies):
    people = household(7, 2).members
    allows, ids = _allows(people, source="tax")  # allows for another source
    with pytest.raises(TypeError):
        connector("household", base_url("household", agencies.url)).fetch(allows, ids, auth_ref="r1")
    with pytest.raises(TypeError):
        connector("household", base_url("household", agencies.url)).fetch([object()], ids, auth_ref="r1")
    assert agencies.stats()["household"]["requests"] == 0


def test_a_refusal_is_not_retried(agencies):
    people = household(7, 2).members
    allows, ids = _allows(people)
    result = connector("household", base_url("household", agencies.url)).fetch(allows, ids, auth_ref="")  # no reference: 403
    assert result.status == "unavailable" and result.reason == Failure.REFUSED.value
    stats = agencies.stats()["household"]
    assert (stats["requests"], stats["served"], stats["refused"], stats["rows"]) == (1, 0, 1, 0)


def test_a_wrong_credential_or_a_forged_hub_signature_is_refused_once(agencies):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hub.crypto import keyring

    people = household(7, 2).members
    allows, ids = _allows(people)
    base = base_url("household", agencies.url)
    wrong_key = HouseholdSource(base, credential=Credential("api_key", "not-the-key"), signing_key=keyring().signing_key)
    assert wrong_key.fetch(allows, ids, auth_ref="r1").reason == Failure.REFUSED.value
    good = connector("household", base).credential
    forged = HouseholdSource(base, credential=good, signing_key=Ed25519PrivateKey.generate())
    assert forged.fetch(allows, ids, auth_ref="r1").reason == Failure.REFUSED.value
    assert agencies.stats()["household"]["refused"] == 2 and agencies.stats()["household"]["requests"] == 2
    with pytest.raises(ValueError):
        HouseholdSource(base, credential=Credential("hmac", "x"), signing_key=keyring().signing_key)


def test_an_unreachable_agency_makes_the_source_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    people = household(7, 2).members
    allows, ids = _allows(people)
    result = connector("household", f"http://127.0.0.1:{port}/household/").fetch(allows, ids, auth_ref="r1")
    assert result.status == "unavailable" and result.reason == Failure.UNREACHABLE.value and result.rows == []


def test_the_error_table():
    assert classify(403) == (Failure.REFUSED, Action.FAIL)
    assert classify(401)[1] is Action.FAIL
    assert classify(429) == (Failure.RATE_LIMITED, Action.RETRY)
    assert classify(503) == (Failure.SERVER_ERROR, Action.RETRY)
    assert classify(404) == (Failure.BAD_REQUEST, Action.FAIL)
    err = AgencyError("household", Failure.TIMEOUT)
    assert str(err) == "household: TIMEOUT"
