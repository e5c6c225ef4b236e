"""The household suite: each kind of bad row is caught by its check, with a reason staff can read."""

from __future__ import annotations

import pytest

from agencies.population import household
from schemas.suite import UnknownSuite, validate


def _rows():
    rows = []
    for p in household(7, 12).members + household(7, 13).members:
        rows.append({"id_number": p.id_number, "name": p.name, "sex": p.sex, "birth_date": p.birth_date.isoformat(),
                     "household_no": "210302000000012", "relation": "head", "status": "normal",
                     "address_code": p.address_code})
    return rows


def _flip(idn: str) -> str:
    return idn[:17] + ("0" if idn[17] != "0" else "1")


@pytest.mark.parametrize(
    "mutate, check",
    [
        (lambda r: r.update(id_number=_flip(r["id_number"])), "id_check_digit"),
        (lambda r: r.update(address_code="999999"), "known_division"),
        (lambda r: r.update(name=None), "required_field"),
        (lambda r: r.update(sex="9"), "known_sex_code"),
        (lambda r: r.update(sex="female" if r["sex"] == "male" else "male"), "sex_matches_id"),
        (lambda r: r.update(birth_date="1900-01-01"), "birth_matches_id"),
        (lambda r: r.update(relation="77"), "known_relation_code"),
        (lambda r: r.update(status="ZZ"), "known_status_code"),
    ],
)
def test_each_fault_is_caught_by_its_check(mutate, check):
    rows = _rows()
    mutate(rows[1])
    outcome = validate("household", rows)
    assert not outcome.success
    assert set(outcome.failures) == {1}
    assert check in {c for c, _ in outcome.failures[1]}
    reasons = [r for _, r in outcome.failures[1]]
    assert all(" / " in r for r in reasons)  # Chinese, then English
    assert all(rows[1]["id_number"] not in r for r in reasons)


def test_clean_rows_pass():
    outcome = validate("household", _rows())
    assert outcome.success and outcome.failures == {} and outcome.rows == len(_rows())


def test_duplicates_within_a_batch_are_caught():
    rows = _rows()
    rows.append(dict(rows[0]))
    outcome = validate("household", rows)
    assert {0, len(rows) - 1} <= set(outcome.failures)


def test_a_renamed_field_fails_the_required_check_for_every_row():
    rows = [{("sfzh" if k == "id_number" else k): v for k, v in r.items()} for r in _rows()]
    outcome = validate("household", rows)
    assert set(outcome.failures) == set(range(len(rows)))


def test_unknown_suite():
    with pytest.raises(UnknownSuite):
        validate("nowhere", [])
