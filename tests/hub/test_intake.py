from __future__ import annotations

import copy

import pytest

from hub.intake import InvalidRequest, create_request
from tests.conftest import sample


def _problems(doc) -> list[str]:
    with pytest.raises(InvalidRequest) as info:
        create_request(doc)
    return info.value.problems


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["members"][0].update(id_number=d["members"][0]["id_number"][:17] + ("0" if d["members"][0]["id_number"][17] != "0" else "1")), "members[1].id_number"),
        (lambda d: d.update(purpose="lottery"), "purpose"),
        (lambda d: d.update(sources=["astrology"]), "sources"),
        (lambda d: d.update(members=[]), "members"),
        (lambda d: d.update(department="mz lowercase"), "department"),
        (lambda d: d["authorization"].update(valid_until="2020-01-01T00:00:00+00:00"), "authorization: valid_until"),
        (lambda d: d["authorization"].update(valid_from="yesterday"), "authorization.valid_from"),
        (lambda d: d["authorization"].update(valid_from="2026-01-01T00:00:00"), "authorization.valid_from"),
        (lambda d: d["authorization"].update(data_life_days=0), "authorization.data_life_days"),
        (lambda d: d["authorization"].update(consents=[]), "authorization.consents"),
        (lambda d: d["authorization"]["consents"][0].update(id_number="11010519491231002X"),
         "authorization.consents[1].id_number"),
        (lambda d: d["authorization"]["consents"][0].update(evidence_sha256="abc"),
         "authorization.consents[1].evidence_sha256"),
        (lambda d: d["authorization"]["consents"][0].pop("evidence_sha256"), "authorization.consents[1]: an adult"),
        (lambda d: d["authorization"]["consents"][0].update(sources=["astrology"]), "authorization.consents[1].sources"),
        (lambda d: d["authorization"]["consents"][0].update(financial_consent={"sources": ["tax"], "evidence_sha256": "0" * 64}),
         "authorization.consents[1].financial_consent.sources"),
        (lambda d: d["authorization"]["consents"].append(dict(d["authorization"]["consents"][0])),
         "authorization.consents[1].id_number: the member is named twice"),
        (lambda d: d["members"].append(dict(d["members"][0])), "members"),
    ],
)
def test_bad_requests_are_refused_with_a_clear_reason_and_no_personal_data(mutate, field):
    doc = copy.deepcopy(sample(3))
    mutate(doc)
    problems = _problems(doc)
    assert any(p.startswith(field) for p in problems), problems
    text = " ".join(problems)
    for m in doc["members"]:
        assert m["id_number"] not in text and m["name"] not in text


def _household_with_a_minor():

    for k in range(50):
        doc = sample(k)
        minors = [c for c in doc["authorization"]["consents"] if "guardian_id_number" in c]
        if minors:
            return doc, minors[0]
    raise AssertionError("no household with a minor among 50")


def test_a_minor_must_be_covered_by_an_adult_member_who_signed():
    doc, minor = _household_with_a_minor()
    create_request(copy.deepcopy(doc))  # as generated: accepted
    minor.pop("guardian_id_number")
    assert any("guardian_id_number: a minor needs" in p for p in _problems(copy.deepcopy(doc)))
    minor["guardian_id_number"] = minor["id_number"]
    assert any("guardian_id_number: a minor needs" in p for p in _problems(copy.deepcopy(doc)))


def test_financial_sources_are_accepted_with_the_separate_consent():
    doc = sample(3, sources=("household", "bank"))
    assert all(c["financial_consent"]["sources"] == ["bank"] for c in doc["authorization"]["consents"])
    doc["sources"] = ["household"]  # what the hub can fetch today; the consent may cover more
    create_request(doc)


def test_a_request_may_come_without_its_authorization_yet():
    doc = sample(3)
    doc.pop("authorization")
    assert len(create_request(doc)) == 32


def test_not_an_object():
    assert _problems([1, 2]) == ["the request must be a JSON object"]
