"""The consent gate: each field of an authorization, mutated alone, refuses with its reason."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from consent.gate import Allow, AuthorizationView, Reason, Refuse, decide

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
GOOD = AuthorizationView(
    id="a1",
    person_ref="p_1",
    purpose="dibao",
    sources=frozenset({"household"}),
    valid_from=NOW - dt.timedelta(days=1),
    valid_until=NOW + dt.timedelta(days=30),
)


def test_a_valid_authorization_allows_with_its_basis():
    d = decide("p_1", "household", "dibao", NOW, [GOOD])
    assert isinstance(d, Allow) and d.allowed and d.authorization_id == "a1" and d.reason is Reason.ALLOWED


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"valid_until": NOW}, Reason.EXPIRED),
        ({"valid_until": NOW - dt.timedelta(seconds=1)}, Reason.EXPIRED),
        ({"valid_from": NOW + dt.timedelta(seconds=1)}, Reason.NOT_YET_VALID),
        ({"revoked_at": NOW}, Reason.REVOKED),
        ({"revoked_at": NOW - dt.timedelta(days=1)}, Reason.REVOKED),
        ({"purpose": "medical"}, Reason.WRONG_PURPOSE),
        ({"sources": frozenset({"tax"})}, Reason.SOURCE_NOT_IN_SCOPE),
        ({"person_ref": "p_2"}, Reason.NO_AUTHORIZATION),
    ],
)
def test_each_mutation_is_refused_with_its_reason(change, reason):
    d = decide("p_1", "household", "dibao", NOW, [dataclasses.replace(GOOD, **change)])
    assert isinstance(d, Refuse) and not d.allowed and d.reason is reason


def test_revocation_after_the_moment_does_not_reach_back():
    d = decide("p_1", "household", "dibao", NOW, [dataclasses.replace(GOOD, revoked_at=NOW + dt.timedelta(seconds=1))])
    assert d.allowed


def test_no_authorizations_at_all():
    assert decide("p_1", "household", "dibao", NOW, []).reason is Reason.NO_AUTHORIZATION


def test_one_good_authorization_among_bad_ones_allows():
    bad = dataclasses.replace(GOOD, id="a0", revoked_at=NOW)
    assert decide("p_1", "household", "dibao", NOW, [bad, GOOD]).authorization_id == "a1"


def test_an_allow_cannot_be_made_outside_the_gate():
    with pytest.raises(TypeError):
        Allow("p_1", "household", "dibao", NOW, "a1")


def test_the_gate_refuses_a_naive_moment():
    with pytest.raises(ValueError):
        decide("p_1", "household", "dibao", NOW.replace(tzinfo=None), [GOOD])
