"""The benchmark report: each figure against its goal, quick runs' sized figures, and a tiny end-to-end re-check."""

from __future__ import annotations

import json

import pytest

from bench import run as bench_run


def test_each_report_figure_is_held_to_its_goal_in_its_direction():
    results = {"reverify_rows_per_s": 6000.0, "reverify_peak_rss_mb": 4096.0, "api_read_p99_ms": 1000.0,
               "ledger_proof_ms_at_100k": 3.0, "gx_rows_per_s_10k": 50_000.0, "gx_rows_per_s_100k": 150_000.0}
    rows = {r["key"]: r for r in bench_run.report_rows(results)}
    assert set(rows) == set(bench_run.REPORT)
    assert rows["reverify_rows_per_s"]["meets"] is True  # at least 5,000
    assert rows["reverify_peak_rss_mb"]["meets"] is False  # at most 1,024
    assert rows["api_read_p99_ms"]["meets"] is True  # exactly the goal
    assert rows["ledger_proof_ms_at_1m"]["measured_as"] == "ledger_proof_ms_at_100k"  # a quick run's size
    assert rows["gx_rows_per_s"]["measured_as"] == "gx_rows_per_s_100k"  # the largest size measured
    assert rows["gx_rows_per_s"]["meets"] is True
    assert rows["audit_verify_s_at_1m"]["value"] is None and rows["audit_verify_s_at_1m"]["meets"] is None


def test_the_report_is_printed_and_written_with_the_machine(monkeypatch, tmp_path, capsys):
    import types

    fake = types.SimpleNamespace(run=lambda quick: {"reverify_rows_per_s": 12.5, "request_overhead_ms_p50": 900.0})
    monkeypatch.setattr(bench_run, "BENCHMARKS", ["bench.fake"])
    monkeypatch.setattr(bench_run.importlib, "import_module", lambda name: fake)
    monkeypatch.setattr(bench_run, "RESULTS", tmp_path / "results.json")
    report = bench_run.main(quick=True)
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["machine"]["cores"] >= 1 and written["machine"]["memory_gb"] > 0
    assert written["quick"] is True and written["duration_s"] >= 0 and report["results"] == written["results"]
    out = capsys.readouterr().out
    assert "reverify_rows_per_s" in out and "BELOW" in out and "quick run took" in out
    assert {r["key"]: r["meets"] for r in written["report"]}["request_overhead_ms_p50"] is False


@pytest.mark.timeout(600)
def test_a_tiny_recheck_benchmark_measures_every_stage_against_its_bare_minimum():
    from bench import bench_reverify

    out = bench_reverify.run(quick=True, persons=40)
    persons = out["reverify_persons_40"]
    assert persons >= 40
    assert out["reverify_rows_per_s_40"] > 0 and out["reverify_ceiling_rows_per_s_40"] > out["reverify_rows_per_s_40"]
    assert 0 < out["reverify_ceiling_ratio_40"] < 1
    assert 0 < out["reverify_wire_ratio_40"] < 1 and out["reverify_wire_rows_per_s_40"] > 0
    assert out["reverify_workers_40"] >= 1
    assert out["reverify_rows_per_s_one_process_40"] > 0  # the same batches in one process, for reference
    assert out["reverify_peak_rss_mb_40"] > 50
    # the workers re-checked the store as seeded, not the one the one-process reference had re-checked before them
    assert out["reverify_batches_at_start_40"] == 0
    assert out["reverify_rss_growth_mb_40"] < out["reverify_peak_rss_mb_40"]
    # the disk it took: a re-check adds a version of every record, its rows, answers and ledger entries
    assert 0 < out["reverify_store_mb_seeded_40"] < out["reverify_store_mb_40"]
    # both figures are rounded to 0.1: the store's 0.05 MB becomes 50 KB / persons a person
    assert out["reverify_store_kb_per_person_40"] == pytest.approx(out["reverify_store_mb_40"] * 1000 / persons,
                                                                   abs=50 / persons + 0.05)


@pytest.mark.timeout(600)
def test_a_province_s_share_is_measured_without_the_one_process_reference_and_the_baselines():
    from bench import bench_reverify

    out = bench_reverify.run(quick=True, persons=40, one_process=False, baselines=False)
    assert out["reverify_persons_40"] >= 40  # every part of the seeding seeded its share
    assert out["reverify_rows_per_s_40"] > 0 and "reverify_rss_growth_mb_40" in out
    assert not [k for k in out if "one_process" in k or "ratio" in k or "ceiling" in k or "wire" in k]


@pytest.mark.timeout(600)
def test_the_request_benchmark_counts_only_the_hubs_own_time_as_overhead():
    from bench import bench_request, bench_reverify

    out = bench_request.run(runs=2)
    assert out["request_latency_ms_p50"] > 0
    # the injected 200 ms per call is not counted as the hub's overhead
    assert out["request_latency_ms_p50_injected"] >= bench_reverify.OVERHEAD_LATENCY_MS
    assert 0 < out["request_overhead_ms_p50"] < out["request_latency_ms_p50_injected"]
