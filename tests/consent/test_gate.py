"""The consent gate: a mutation table, one field of a valid authorization at a time, each refused with its reason."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from consent.gate import Allow, AuthorizationView, MemberConsent, Reason, Refuse, decide

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
ADULT = MemberConsent("p_adult", frozenset({"household", "tax", "bank"}), adult_from=dt.date(2000, 1, 1),
                      financial_sources=frozenset({"bank"}))
CHILD = MemberConsent("p_child", frozenset({"household", "bank"}), adult_from=dt.date(2030, 1, 1),
                      own_evidence=False, guardian_ref="p_adult", financial_sources=frozenset({"bank"}))
GOOD = AuthorizationView(
    id="a1", department="MZ-210302", purpose="dibao", valid_from=NOW - dt.timedelta(days=1),
    valid_until=NOW + dt.timedelta(days=30), members={"p_adult": ADULT, "p_child": CHILD},
)


def ask(auths, person="p_adult", source="household", purpose="dibao", department="MZ-210302", moment=NOW):
    return decide(person, source, purpose, department, moment, auths)


def with_member(ref, **change):
    return dataclasses.replace(GOOD, members={**GOOD.members, ref: dataclasses.replace(GOOD.members[ref], **change)})


@pytest.mark.parametrize("person, source", [("p_adult", "household"), ("p_adult", "bank"), ("p_child", "household"),
                                            ("p_child", "bank"), ("p_adult", "tax")])
def test_a_valid_authorization_allows_with_its_basis(person, source):
    d = ask([GOOD], person, source)
    assert isinstance(d, Allow) and d.allowed and d.authorization_id == "a1" and d.reason is Reason.ALLOWED


MUTATIONS = [
    ("expired", dict(auth=dict(valid_until=NOW)), {}, Reason.EXPIRED),
    ("long expired", dict(auth=dict(valid_until=NOW - dt.timedelta(days=1))), {}, Reason.EXPIRED),
    ("not yet valid", dict(auth=dict(valid_from=NOW + dt.timedelta(seconds=1))), {}, Reason.NOT_YET_VALID),
    ("revoked whole", dict(auth=dict(revoked_at=NOW)), {}, Reason.REVOKED),
    ("member revoked", dict(member=("p_adult", dict(revoked_at=NOW - dt.timedelta(hours=1)))), {}, Reason.REVOKED),
    ("source revoked", dict(member=("p_adult", dict(revoked_sources={"household": NOW}))), {}, Reason.REVOKED),
    ("wrong purpose", {}, dict(purpose="medical"), Reason.WRONG_PURPOSE),
    ("source not in scope", {}, dict(source="real_estate"), Reason.SOURCE_NOT_IN_SCOPE),
    ("member not named", {}, dict(person="p_stranger"), Reason.MEMBER_NOT_NAMED),
    ("minor without guardian", dict(member=("p_child", dict(guardian_ref=None))), dict(person="p_child"),
     Reason.MINOR_WITHOUT_GUARDIAN),
    ("guardian is a minor", dict(member=("p_adult", dict(adult_from=dt.date(2030, 1, 1)))), dict(person="p_child"),
     Reason.MINOR_WITHOUT_GUARDIAN),
    ("guardian withdrew", dict(member=("p_adult", dict(revoked_at=NOW))), dict(person="p_child"),
     Reason.MINOR_WITHOUT_GUARDIAN),
    ("financial without separate consent", dict(member=("p_adult", dict(financial_sources=frozenset()))),
     dict(source="bank"), Reason.FINANCIAL_CONSENT_MISSING),
    ("minor's financial without separate consent", dict(member=("p_child", dict(financial_sources=frozenset()))),
     dict(person="p_child", source="bank"), Reason.FINANCIAL_CONSENT_MISSING),
    ("wrong department", {}, dict(department="YB-210303"), Reason.WRONG_DEPARTMENT),
    ("the minor came of age", dict(member=("p_child", dict(adult_from=dt.date(2026, 5, 1)))), dict(person="p_child"),
     Reason.ADULT_WITHOUT_OWN_CONSENT),
]


@pytest.mark.parametrize("name, mutate, query, reason", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_each_mutation_is_refused_with_its_reason(name, mutate, query, reason):
    auth = GOOD
    if "auth" in mutate:
        auth = dataclasses.replace(auth, **mutate["auth"])
    if "member" in mutate:
        ref, change = mutate["member"]
        auth = dataclasses.replace(auth, members={**auth.members, ref: dataclasses.replace(auth.members[ref], **change)})
    d = ask([auth], **query)
    assert isinstance(d, Refuse) and not d.allowed and d.reason is reason


def test_revocation_after_the_moment_does_not_reach_back():
    later = NOW + dt.timedelta(seconds=1)
    assert ask([dataclasses.replace(GOOD, revoked_at=later)]).allowed
    assert ask([with_member("p_adult", revoked_sources={"household": later})]).allowed


def test_a_source_revocation_leaves_the_other_sources():
    auth = with_member("p_adult", revoked_sources={"household": NOW})
    assert ask([auth], source="household").reason is Reason.REVOKED
    assert ask([auth], source="tax").allowed


def test_no_authorizations_at_all():
    assert ask([]).reason is Reason.NO_AUTHORIZATION


def test_one_good_authorization_among_bad_ones_allows_and_the_closest_refusal_is_reported():
    bad = dataclasses.replace(GOOD, id="a0", revoked_at=NOW)
    assert ask([bad, GOOD]).authorization_id == "a1"
    other_purpose = dataclasses.replace(GOOD, id="a2", purpose="medical")
    refused = ask([other_purpose, bad])
    assert refused.reason is Reason.REVOKED and refused.authorization_id == "a0"


def test_an_allow_cannot_be_made_outside_the_gate():
    with pytest.raises(TypeError):
        Allow("p_1", "household", "dibao", NOW, "a1")


def test_the_gate_refuses_a_naive_moment():
    with pytest.raises(ValueError):
        ask([GOOD], moment=NOW.replace(tzinfo=None))
