from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from hub.stages.intake import InvalidRequest, create_request
from tests.support.households import sample


def _problems(doc) -> list[str]:
    with pytest.raises(InvalidRequest) as info:
        create_request(doc)
    return info.value.problems


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["members"][0].update(id_number=d["members"][0]["id_number"][:17] + ("0" if d["members"][0]["id_number"][17] != "0" else "1")), "members[0].id_number"),
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
         "authorization.consents[0].id_number"),
        (lambda d: d["authorization"]["consents"][0].update(evidence_sha256="abc"),
         "authorization.consents[0].evidence_sha256"),
        (lambda d: d["authorization"]["consents"][0].pop("evidence_sha256"), "authorization.consents[0]: an adult"),
        (lambda d: d["authorization"]["consents"][0].update(sources=["astrology"]), "authorization.consents[0].sources"),
        (lambda d: d["authorization"]["consents"][0].update(financial_consent={"sources": ["tax"], "evidence_sha256": "0" * 64}),
         "authorization.consents[0].financial_consent.sources"),
        (lambda d: d["authorization"]["consents"].append(dict(d["authorization"]["consents"][0])),
         "authorization.consents[0].id_number: the member is named twice"),
        (lambda d: d["members"].append(dict(d["members"][0])), "members"),
        # strict types: a moment is ISO 8601 text, a day count a JSON integer (str() and bool once let these through)
        (lambda d: d["authorization"].update(valid_from=1764547200),
         "authorization.valid_from: an ISO 8601 date-time as text, not a number"),
        (lambda d: d["authorization"].update(valid_until=1900000000.5),
         "authorization.valid_until: an ISO 8601 date-time as text, not a number"),
        (lambda d: d["authorization"].update(valid_from=True),
         "authorization.valid_from: an ISO 8601 date-time as text, not a boolean"),
        (lambda d: d["authorization"].pop("valid_until"), "authorization.valid_until: required"),
        (lambda d: d["authorization"].update(recheck_interval_days="90"), "authorization.recheck_interval_days"),
        (lambda d: d["authorization"].update(data_life_days=True), "authorization.data_life_days"),
        (lambda d: d["authorization"].update(data_life_days=30.0), "authorization.data_life_days"),
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


def _born_on(doc: dict, member: int, day: dt.date) -> dict:
    """The document with member ``member`` (0-based) given an ID number of someone born on ``day`` (its check
    character right), wherever the document names them."""
    from schemas.codes import id_check_char

    old = doc["members"][member]["id_number"]
    first17 = old[:6] + day.strftime("%Y%m%d") + old[14:17]
    return json.loads(json.dumps(doc).replace(old, first17 + id_check_char(first17)))


@pytest.mark.parametrize("day", [dt.date(2099, 1, 1), dt.date.today() + dt.timedelta(days=2)])
def test_a_member_born_in_the_future_is_refused_though_the_check_character_is_right(day):
    doc = _born_on(sample(3), 1, day)
    problems = _problems(doc)
    assert "members[1].id_number: its birth date is in the future" in problems, problems
    assert all(m["id_number"] not in " ".join(problems) for m in doc["members"])


def test_a_member_born_yesterday_is_no_problem_of_birth():
    doc = _born_on(sample(3), 1, dt.date.today() - dt.timedelta(days=1))
    from hub.stages.intake import check_request

    assert not any("birth date" in p for p in check_request(doc))
