"""The suites of the ten economic sources: clean data passes; each kind of bad row is caught with its reason."""

from __future__ import annotations

import copy

import pytest

from agencies.server import Population
from schemas.contracts import EXTRA, SPECS
from schemas.rules import RULES
from schemas.suite import validate

POP = Population(7, 120)
SOURCES = [k for k in SPECS if k != "household"]


def clean(source):
    return [r for i in POP.by_id for r in (POP.rows(source, i) or [])][:300]


@pytest.mark.parametrize("source", SOURCES)
def test_clean_rows_of_every_source_pass(source):
    rows = clean(source)
    assert rows
    outcome = validate(source, rows)
    assert outcome.success and outcome.failures == {}


def _flip(code: str) -> str:
    return code[:17] + ("0" if code[17:] != "0" else "1")


def _mutations(source):
    spec, rules = SPECS[source], RULES[source]
    out = [("wrong ID check character", lambda r: r.update(id_number=_flip(r["id_number"])), "id_check_digit"),
           ("renamed field", lambda r: r.update({EXTRA: ["renamed_v2"]}), "unexpected_field"),
           ("required missing", lambda r, f=rules.required[-1]: r.update({f: None}), "required_field")]
    for f in spec.codes:
        out.append((f"unknown code in {f}", lambda r, f=f: r.update({f: "ZZ"}), "known_code"))
    for f in rules.non_negative:
        out.append((f"negative {f}", lambda r, f=f: r.update({f: -1.0}), "non_negative"))
        out.append((f"{f} not a number", lambda r, f=f: r.update({f: "N/A"}), "number"))
    for f in rules.positive:
        out.append((f"zero {f}", lambda r, f=f: r.update({f: 0.0}), "positive"))
    for f in rules.fractions:
        out.append((f"{f} above one", lambda r, f=f: r.update({f: 1.5}), "fraction"))
    for f in rules.past_dates:
        out.append((f"future {f}", lambda r, f=f: r.update({f: "2999-01-01"}), "not_future"))
    for f in rules.periods:
        out.append((f"bad {f}", lambda r, f=f: r.update({f: "2025-13"}), "period"))
    for f in rules.uscc:
        out.append((f"bad {f}", lambda r, f=f: r.update({f: _flip(r[f])} if r.get(f) else {f: "91350100M000100Y44"}),
                    "uscc_check_digit"))
    return out


CASES = [(s, *m) for s in SOURCES for m in _mutations(s)]


@pytest.mark.parametrize("source, name, mutate, check", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_each_fault_is_quarantined_with_its_reason(source, name, mutate, check):
    rows = copy.deepcopy(clean(source))
    mutate(rows[1])
    outcome = validate(source, rows)
    assert not outcome.success
    assert 1 in outcome.failures and check in {c for c, _ in outcome.failures[1]}, outcome.failures.get(1)
    assert all(" / " in reason for _, reason in outcome.failures[1])
    assert set(outcome.failures) <= {0, 1, 2}  # the fault is pinned to its row (a duplicate may name its twin)


@pytest.mark.parametrize("source", SOURCES)
def test_a_duplicated_row_is_caught(source):
    rows = clean(source)
    rows.append(dict(rows[0]))
    outcome = validate(source, rows)
    assert {0, len(rows) - 1} <= set(outcome.failures)
    assert "unique_row" in {c for c, _ in outcome.failures[len(rows) - 1]}


@pytest.mark.parametrize("source", SOURCES)
def test_a_renamed_field_is_a_must_pass_failure(source):
    rows = clean(source)
    rows[0] = {**rows[0], EXTRA: ["renamed_v2"]}
    outcome = validate(source, rows)
    assert outcome.must_pass_failed and "renamed" in outcome.must_pass_failed[0]
    clean_outcome = validate(source, clean(source))
    assert clean_outcome.must_pass_failed == []


def _faulty(source) -> list[dict]:
    """A source's clean rows with one row of each fault and a duplicate: every kind of result in one run."""
    rows = copy.deepcopy(clean(source)[:40])
    for i, (_, mutate, _) in enumerate(_mutations(source)):
        mutate(rows[i])
    return rows + [copy.deepcopy(rows[-1])]


@pytest.mark.parametrize("source", [*SOURCES, "household", "members", "cross_source"])
def test_each_suite_finds_the_same_with_gx_kept_warm(source, monkeypatch):
    """schemas.suite keeps GX warm: each expectation's configuration made once per run instead of on every read of
    GX's property; each suite's metric graph, expectation objects, their metric dependencies and their configurations
    as JSON made once per process; the Data Docs made without converting the values they drop. A run on a batch of
    other rows after a warm-up run (so every kept part is reused) finds, row by row and check by check, what GX alone
    finds, and the Data Docs are the same."""
    from schemas import suite

    if source == "members":
        warm = [{"person_ref": f"p{i}", "state": "rows"} for i in range(3)]
        rows = warm + [{"person_ref": "p3", "state": "silent"}, {"person_ref": "p4", "state": "unanswered"},
                       {"person_ref": "p5", "state": "lost"}]
    elif source == "cross_source":
        warm = [{"source": "tax", "person_ref": "p0", "fact_date": "2024-05", "birth_date": "1980-01-02"}]
        rows = warm + [{"source": "bank", "person_ref": "p1", "fact_date": "1999-12", "birth_date": "2001-03-04"}]
    elif source == "household":
        from tests.schemas.test_suite import _flip as flip_id, _rows

        warm = _rows()
        rows = _rows()
        rows[1]["id_number"] = flip_id(rows[1]["id_number"])
        rows[2]["sex"] = "9"
        rows.append(dict(rows[0]))
    else:
        warm, rows = clean(source)[:3], _faulty(source)
    assert validate(source, copy.deepcopy(warm)).success
    kept = {key: graphs for key, graphs in suite._plans.items() if key[1] == f"{source}_suite"}
    assert kept  # the warm-up run planned the suite once and kept it
    fast = validate(source, copy.deepcopy(rows))
    assert all(suite._plans[key] is graphs for key, graphs in kept.items())  # reused, not planned again
    monkeypatch.setattr(suite, "MEMO", False)
    plain = validate(source, copy.deepcopy(rows))
    assert not fast.success and fast.failures  # the faults were found, so the comparison compares something
    assert (fast.success, fast.failures, fast.results, fast.must_pass_failed) == \
        (plain.success, plain.failures, plain.results, plain.must_pass_failed)
    strip = lambda docs: {k: v for k, v in docs.items() if k != "meta"}  # noqa: E731 - the run's time differs
    assert strip(fast.docs) == strip(plain.docs)
