from __future__ import annotations

from agencies.population import household, households
from agencies.requests import sample_request
from schemas.codes import ANSHAN_DIVISIONS, birth_date_from_id, is_valid_id, sex_from_id


def test_same_seed_same_population_other_seed_other_population():
    assert list(households(5, 30)) == list(households(5, 30))
    assert list(households(5, 30)) != list(households(6, 30))
    assert household(5, 17) == list(households(5, 18))[17]


def test_every_person_is_consistent_with_the_id_number():
    people = [p for h in households(9, 300) for p in h.members]
    assert len({p.id_number for p in people}) == len(people)
    for p in people:
        assert is_valid_id(p.id_number)
        assert sex_from_id(p.id_number) == p.sex
        assert birth_date_from_id(p.id_number) == p.birth_date
        assert p.address_code in ANSHAN_DIVISIONS


def test_households_have_one_head_and_one_to_seven_members():
    for h in households(9, 300):
        assert 1 <= len(h.members) <= 7
        assert [p.relation for p in h.members].count("head") == 1
        assert h.members[0].status == "normal"


def test_sample_request_names_the_living_members_with_their_authorizations():
    doc = sample_request(seed=9, households=300, k=4)
    living = [p for p in household(9, 4).members if p.status == "normal"]
    assert [m["id_number"] for m in doc["members"]] == [p.id_number for p in living]
    assert [a["id_number"] for a in doc["authorizations"]] == [p.id_number for p in living]
