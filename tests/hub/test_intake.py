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
        (lambda d: d["authorizations"][0].update(valid_until="2020-01-01T00:00:00+00:00"), "authorizations[1]"),
        (lambda d: d["authorizations"][0].update(valid_from="yesterday"), "authorizations[1].valid_from"),
        (lambda d: d["authorizations"][0].update(valid_from="2026-01-01T00:00:00"), "authorizations[1].valid_from"),
        (lambda d: d["authorizations"][0].update(id_number="11010519491231002X"), "authorizations[1].id_number"),
        (lambda d: d["authorizations"][0].update(evidence_sha256="abc"), "authorizations[1].evidence_sha256"),
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


def test_not_an_object():
    assert _problems([1, 2]) == ["the request must be a JSON object"]
