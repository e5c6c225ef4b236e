"""Validation stages beyond single rows: every member answered or explained, checks across sources, results linked
to the run that made them, and Data Docs whose address the task log gives."""

from __future__ import annotations

import json
import logging
import threading

from sqlalchemy import select

from core.crypto import keyring
from hub.services.validation import validation_runs
from hub.stages.intake import create_request
from hub.stages.pipeline import cross_check, fetch_source, run_inline, validate_batch
from core.store import FetchBatch, QuarantinedRow, SourceRow, ValidationRun, aad_source_row, session
from tests.support.households import sample

UNKNOWN_ID = "11010519491231002X"  # valid check character, not in the simulated population


def _household(min_members: int = 2) -> int:
    from agencies.population import household_in_population

    return next(k for k in range(41, 50)
                if sum(p.status == "normal" for p in household_in_population(7, 50, k).members) >= min_members)


def test_every_member_is_answered_or_explained(agencies):
    doc = sample(_household(), sources=["household", "tax"])
    unknown = {"id_number": UNKNOWN_ID, "name": "王某", "relation": "other"}
    doc["members"].append(unknown)
    adult = next(c for c in doc["authorization"]["consents"] if c.get("evidence_sha256"))
    doc["authorization"]["consents"].append({**adult, "id_number": UNKNOWN_ID, "financial_consent": None})
    left_out = doc["members"][1]["id_number"]  # this member's consent does not cover tax
    for c in doc["authorization"]["consents"]:
        if c["id_number"] == left_out:
            c["sources"] = ["household"]
    request_id = create_request(doc)
    keys = keyring()
    states = {}
    for source in ("household", "tax"):
        summary = validate_batch(fetch_source(request_id, source), run_id="members-test")
        with session() as s:
            batch = s.scalars(select(FetchBatch).where(FetchBatch.request_id == request_id,
                                                       FetchBatch.source == source)).one()
            states[source] = batch.members
            runs = s.scalars(select(ValidationRun).where(ValidationRun.batch_id == batch.id)).all()
        assert {r.suite for r in runs} == {f"{source}_suite", "members_suite"}
        assert summary["members_unexplained"] == 0
    assert states["household"][keys.pseudonym(UNKNOWN_ID)] == "not_found"  # the agency said it does not know them
    assert states["tax"][keys.pseudonym(left_out)] == "refused"  # the gate did not let us ask
    assert set(states["household"].values()) <= {"rows", "not_found"}
    assert len(states["household"]) == len(doc["members"])


def test_a_fact_dated_before_the_persons_birth_is_quarantined_across_sources(agencies):
    from agencies.server import Population

    pop = Population(7, 50)
    k = next(h.index for h in pop.households if any(pop.rows("tax", m.id_number) for m in h.members))
    request_id = create_request(sample(k, sources=["household", "tax"]))
    batches = {src: fetch_source(request_id, src) for src in ("household", "tax")}
    for b in batches.values():
        validate_batch(b, run_id="cross-test")
    keys = keyring()
    tax = batches["tax"]
    with session() as s:  # the agency's row 0 carries a month before the person was born
        row = s.scalars(select(SourceRow).where(SourceRow.batch_id == tax, SourceRow.row_no == 0)).one()
        data = json.loads(keys.decrypt(row.data_enc, aad=aad_source_row(tax, 0)))
        data["period"] = "1900-01"
        row.data_enc = keys.encrypt(json.dumps(data, ensure_ascii=False), aad=aad_source_row(tax, 0))
    summary = cross_check(request_id, run_id="cross-test")
    assert summary["rows_failed"] == 1
    with session() as s:
        q = s.scalars(select(QuarantinedRow).where(QuarantinedRow.batch_id == tax)).all()
        assert [(r.row_no, r.expectation) for r in q] == [(0, "fact_after_birth")]
        assert s.get(FetchBatch, tax).status == "incomplete"
        assert not s.scalars(select(SourceRow.valid).where(SourceRow.batch_id == tax, SourceRow.row_no == 0)).one()
        run = s.get(ValidationRun, q[0].validation_run_id)
        assert (run.suite, run.request_id, run.batch_id, run.run_id) == ("cross_source_suite", request_id, None,
                                                                         "cross-test")
    assert cross_check(request_id, run_id="cross-test") == {"request_id": request_id, "already": True}


def test_clean_households_pass_every_check_across_sources(agencies):
    from tests.support.households import ALL_SOURCES

    for k in (24, 44):
        result = run_inline(create_request(sample(k, sources=ALL_SOURCES)))
        with session() as s:
            runs = s.scalars(select(ValidationRun).where(ValidationRun.request_id == result.request_id)).all()
        assert runs and all(r.success for r in runs), [(r.suite, r.rows_failed) for r in runs if not r.success]
        assert sum(r.suite == "cross_source_suite" for r in runs) == 1


def test_the_log_of_a_validation_gives_the_address_of_its_data_docs(agencies, caplog, monkeypatch):
    monkeypatch.setenv("HUB_API_URL", "https://hub.example.internal:8443")
    request_id = create_request(sample(45))
    with caplog.at_level(logging.INFO, logger="hub.stages.pipeline"):
        validate_batch(fetch_source(request_id, "household"), run_id="log-test")
    with session() as s:
        ids = s.scalars(select(ValidationRun.id).where(ValidationRun.request_id == request_id)).all()
    for i in ids:
        assert f"Data Docs: https://hub.example.internal:8443/console/data-docs/{i}" in caplog.text


def test_validations_running_in_parallel_threads_do_not_mix_their_data():
    from agencies.server import Population
    from schemas.suite import validate

    pop = Population(7, 50)
    people = [m.id_number for h in pop.households for m in h.members]
    frames = {src: [r for i in people for r in (pop.rows(src, i) or [])] for src in ("household", "bank", "tax")}
    expected = {src: validate(src, rows).results for src, rows in frames.items()}
    got, errors = [], []

    def work(src):
        try:
            for _ in range(3):
                got.append((src, validate(src, frames[src]).results))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(src,)) for src in frames for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(got) == 18
    assert all(results == expected[src] for src, results in got)


def test_batches_validated_together_keep_their_own_results_and_uniqueness_holds_within_each(agencies):
    from agencies.server import AgencyServer
    from hub.stages.pipeline import validate_batches

    dirty = AgencyServer.from_hub_home(households=50, seed=7, faults="dirty",
                                       fault_rates={"row": 0.0, "response": 0.0, "duplicate": 1.0}).start()
    try:
        same = [create_request(sample(47, sources=["household", "bank"])) for _ in range(2)]  # one household, twice
        clean = [fetch_source(r, src) for r in same for src in ("household", "bank")]
        doubled = create_request(sample(47, sources=["bank"]))
        bad = fetch_source(doubled, "bank", base_url=dirty.base_url("bank"))
    finally:
        dirty.stop()
    results = validate_batches([*clean, bad], run_id="together")
    assert all(results[b]["rows_failed"] == 0 and results[b]["status"] == "complete" for b in clean)
    assert results[bad]["rows_failed"] == results[bad]["rows"] > 0 and results[bad]["status"] == "incomplete"
    runs = {r.batch_id: r for r in validation_runs(run_id="together", source="bank", limit=200)
            if r.suite == "bank_suite"}  # as staff read them: their results from the validation texts
    assert bad in runs and set(clean) & set(runs)
    assert runs[bad].rows_failed == runs[bad].rows and not runs[bad].success
    unique = next(r for r in runs[bad].results if r["check"] == "unique_row")
    assert unique["unexpected"] == runs[bad].rows and not unique["success"]
    assert all(r["success"] for b in clean if b in runs for r in runs[b].results)
    assert validate_batches([*clean, bad], run_id="together")[bad]["already"]


def test_requests_checked_across_sources_together_keep_their_own_results(agencies):
    from agencies.server import Population
    from hub.stages.pipeline import cross_check_many

    pop = Population(7, 50)
    ks = [h.index for h in pop.households if any(pop.rows("tax", m.id_number) for m in h.members)][1:3]
    requests_ = [create_request(sample(k, sources=["household", "tax"])) for k in ks]
    taxes = []
    for r in requests_:
        validate_batch(fetch_source(r, "household"), run_id="together-cross")
        taxes.append(fetch_source(r, "tax"))
        validate_batch(taxes[-1], run_id="together-cross")
    keys = keyring()
    with session() as s:  # only the first request's row 0 is dated before its person's birth
        row = s.scalars(select(SourceRow).where(SourceRow.batch_id == taxes[0], SourceRow.row_no == 0)).one()
        data = json.loads(keys.decrypt(row.data_enc, aad=aad_source_row(taxes[0], 0)))
        data["period"] = "1900-01"
        row.data_enc = keys.encrypt(json.dumps(data, ensure_ascii=False), aad=aad_source_row(taxes[0], 0))
    out = cross_check_many(requests_, run_id="together-cross")
    assert [out[r]["rows_failed"] for r in requests_] == [1, 0]
    with session() as s:
        assert s.get(FetchBatch, taxes[0]).status == "incomplete" and s.get(FetchBatch, taxes[1]).status == "complete"
    assert cross_check_many(requests_, run_id="together-cross")[requests_[1]]["already"]


def test_a_batch_of_households_is_validated_with_multi_row_writes(dirty_agencies):
    from sqlalchemy import event

    from core.store import engine
    from hub.stages.pipeline import fetch_many, validate_batches

    request_ids = [create_request(sample(k, sources=["household", "tax", "bank", "social_insurance"]))
                   for k in (5, 6, 7, 8)]
    pending = fetch_many(request_ids, exchange=True)
    writes: list[tuple[str, int]] = []  # (statement's start, parameter sets)

    def seen(conn, cursor, statement, parameters, context, executemany):
        text = " ".join(statement.split()[:3]).lower()
        if text.startswith(("insert into validation_runs", "insert into quarantine", "update source_rows")):
            writes.append((text, len(parameters) if executemany else 1))

    event.listen(engine(), "before_cursor_execute", seen)
    try:
        validate_batches(pending, run_id="bulk")
    finally:
        event.remove(engine(), "before_cursor_execute", seen)
    with session() as s:
        runs = s.scalars(select(ValidationRun).where(ValidationRun.run_id == "bulk")).all()
        flagged = s.scalars(select(SourceRow).where(SourceRow.batch_id.in_(pending))).all()
        quarantined = s.scalars(select(QuarantinedRow).where(
            QuarantinedRow.validation_run_id.in_([r.id for r in runs]))).all()
    assert len(runs) == 2 * len(pending) and flagged and all(r.valid is not None for r in flagged)
    assert quarantined and {q.row_no for q in quarantined} <= {r.row_no for r in flagged if r.valid is False}
    # one statement (its rows' parameters together) for every run, one for the quarantine, two set-based updates of
    # the rows' flags: none per row or per batch
    assert sorted(writes) == [("insert into quarantine", len(quarantined)),
                              ("insert into validation_runs", len(runs)),
                              ("update source_rows set", 1), ("update source_rows set", 1)]


def test_a_run_s_results_are_encoded_once_per_distinct_result_of_a_batch():
    """A re-check stores a result per batch and suite (thousands a batch of households): equal ones are encoded
    once and shared, and each still says its own batch's counts."""
    from schemas.suite import Outcome
    from hub.stages.pipeline import _own_results, _results_of

    outcome = Outcome(suite="tax_suite", success=False, rows=9, results=[
        {"check": "id_valid", "reason": "ID_INVALID", "unexpected": 1, "success": False},
        {"check": "income_non_negative", "reason": "NEGATIVE", "unexpected": 0, "success": True}])
    clean3, clean3_again = _results_of(outcome, {}, 3), _results_of(outcome, {}, 3)
    clean2 = _results_of(outcome, {}, 2)
    bad = _results_of(outcome, {1: [("id_valid", "ID_INVALID")]}, 3)
    assert clean3 is clean3_again
    assert clean2 is not clean3 and bad is not clean3
    assert json.loads(clean3) == [
        {"check": "id_valid", "reason": "ID_INVALID", "unexpected": 0, "success": True, "rows": 3},
        {"check": "income_non_negative", "reason": "NEGATIVE", "unexpected": 0, "success": True, "rows": 3}]
    assert [r["rows"] for r in json.loads(clean2)] == [2, 2]
    assert [(r["unexpected"], r["success"]) for r in json.loads(bad)] == [(1, False), (0, True)]
    assert _own_results(outcome) is _own_results(outcome)
    assert json.loads(_own_results(outcome)) == outcome.results


def test_many_runs_are_logged_one_line_a_suite_and_source_but_each_failed_run_on_its_own(caplog, monkeypatch):
    from hub.stages import pipeline

    monkeypatch.setenv("HUB_API_URL", "https://hub.example.internal:8443")

    def run(i: int, source: str | None, suite: str, failed: int = 0):
        return pipeline._Run(batch_id=f"b{i}", request_id=f"r{i}", source=source, suite=suite, success=not failed,
                             rows=3, rows_failed=failed, results="[]", run_id="manual__x", docs=None, id=i)

    many = [run(i, "tax", "tax_suite") for i in range(1, 41)] + [run(i, "tax", "members_suite") for i in range(41, 81)]
    many += [run(99, "tax", "tax_suite", failed=2), run(100, None, "cross_source_suite")]
    with caplog.at_level(logging.INFO, logger="hub.stages.pipeline"):
        pipeline._log_runs(many, "manual__x")
    lines = caplog.text.splitlines()
    runs = "https://hub.example.internal:8443/v1/validation-runs?run_id=manual__x"
    assert len(lines) == 4
    assert sum(f"validation tax_suite (passed): 40 runs, none of their 120 rows failed; the runs and their Data Docs: "
               f"{runs}&source=tax" in line for line in lines) == 1
    assert sum(f"validation members_suite (passed): 40 runs, none of their 120 rows failed" in line and
               f"{runs}&source=tax" in line for line in lines) == 1
    assert sum(f"validation cross_source_suite (passed): 1 runs" in line and line.endswith(runs) for line in lines) == 1
    assert sum("validation tax_suite (failed): 2 of 3 failed; Data Docs: "
               "https://hub.example.internal:8443/console/data-docs/99" in line for line in lines) == 1

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hub.stages.pipeline"):
        pipeline._log_runs(many[:pipeline.LOG_EACH], "manual__x")  # few: a line each, as before
    assert len(caplog.text.splitlines()) == pipeline.LOG_EACH
    assert all("/console/data-docs/" in line for line in caplog.text.splitlines())
