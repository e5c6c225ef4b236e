"""`hub bench` / `make bench`: run every benchmark, print a table, write bench/results.json.

The report's figures (REPORT) come first, each with its unit and the goal it is held to; every other figure the
benchmarks print follows. Each figure is measured on this machine in this run; ratios compare with a baseline
measured in the same run (see each benchmark's docstring). ``--quick`` runs every benchmark at smaller sizes (a
figure measured at another size than its key names carries that size in its key, e.g. ``_100k``); the Airflow
re-check of 10,000 persons through real DAG runs is only run when asked (``--airflow``).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import time
from pathlib import Path

BENCHMARKS = ["bench.bench_reverify", "bench.bench_request", "bench.bench_api", "bench.bench_ledger", "bench.bench_dags",
              "bench.bench_validation", "bench.bench_population", "bench.bench_agencies", "bench.bench_connectors",
              "bench.bench_records", "bench.bench_review"]
RESULTS = Path(__file__).resolve().parent / "results.json"

# key -> (unit, goal, "min" if the figure must reach the goal or "max" if it must stay under it, why that goal)
REPORT: dict[str, tuple[str, float, str, str]] = {
    "reverify_rows_per_s": ("rows/s", 5000.0, "min", "100,000 persons x 11 sources re-checked in under 4 minutes"),
    "reverify_wire_ratio": ("", 0.5, "min", "at least half the rate of the same answers over the wire, bare"),
    "reverify_ceiling_ratio": ("", 0.15, "min", "within 7x of parse+hash+insert on the same rows"),
    "reverify_peak_rss_mb": ("MB", 1024.0, "max", "bounded memory per process whatever the city's size"),
    "request_latency_ms_p50": ("ms", 500.0, "max", "a caseworker's verification answered within 0.5 s"),
    "request_overhead_ms_p50": ("ms", 300.0, "max", "the hub adds at most 0.3 s to its slowest agency call"),
    "api_read_p99_ms": ("ms", 1000.0, "max", "a record read within 1 s, 32 clients at once"),
    "api_read_p99_x_bare": ("x", 3.0, "max", "a read's p99 within 3x of the bare route's, 32 clients at once"),
    "api_read_rps": ("req/s", 100.0, "min", "a city's departments reading at peak"),
    "api_read_ratio_vs_bare": ("", 0.30, "min", "a read at least 0.3 of the framework's bare route (SQLite)"),
    "api_read_pg_ratio_vs_bare": ("", 0.30, "min", "the same on PostgreSQL, one worker"),
    "api_read_pg_p99_ms": ("ms", 1000.0, "max", "a record read within 1 s on PostgreSQL, 32 clients at once"),
    "api_read_pg_p99_x_bare": ("x", 3.0, "max", "on PostgreSQL, a read's p99 within 3x of the bare route's"),
    "ledger_appends_per_s": ("entries/s", 500.0, "min", "every decision, fetch and read logged as it happens"),
    "ledger_proof_ms_at_1m": ("ms", 50.0, "max", "an auditor's proof at once"),
    "audit_verify_s_at_1m": ("s", 300.0, "max", "the whole ledger checked within 5 min"),
    "dag_parse_s_max": ("s", 0.1, "max", "re-parsing a DAG file costs the DAG processor nothing noticeable"),
    "gx_rows_per_s": ("rows/s", 100_000.0, "min", "a night's rows validated in minutes"),
    "gx_ratio_vs_pandas": ("", 0.10, "min", "GX within 10x of the same checks in plain pandas"),
}


def _figure(results: dict, key: str):
    """The figure for a report key: the key itself, else the same figure measured at another size (quick)."""
    if key in results:
        return key, results[key]
    base = key.removesuffix("_at_1m")
    sized = [(k, v) for k, v in results.items() if k.startswith(base + "_") and k not in REPORT]
    return sized[-1] if sized else (None, None)  # the benchmarks measure their sizes smallest first


def report_rows(results: dict) -> list[dict]:
    rows = []
    for key, (unit, goal, sense, why) in REPORT.items():
        measured_as, value = _figure(results, key)
        meets = None if value is None else (value >= goal if sense == "min" else value <= goal)
        rows.append({"key": key, "value": value, "measured_as": measured_as, "unit": unit, "goal": goal,
                     "goal_is": "at least" if sense == "min" else "at most", "meets": meets, "why": why})
    return rows


def machine() -> dict:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as fh:
            mem_kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        pass
    return {"cores": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version(),
            "machine": platform.machine()}


def main(quick: bool = False, only: list[str] | None = None, airflow: bool = False) -> dict:
    started = time.monotonic()
    results: dict = {}
    durations: dict = {}
    for name in BENCHMARKS:
        if only and not any(o in name for o in only):
            continue
        print(f"\n== {name} ==", flush=True)
        t0 = time.monotonic()
        module = importlib.import_module(name)
        results.update(module.run(quick=quick, airflow=airflow) if name == "bench.bench_dags"
                       else module.run(quick=quick))
        durations[name] = round(time.monotonic() - t0, 1)
    table = report_rows(results)
    report = {"machine": machine(), "quick": quick, "at": dt.datetime.now(dt.timezone.utc).isoformat(),
              "duration_s": round(time.monotonic() - started, 1), "durations_s": durations, "report": table,
              "results": results}
    m = report["machine"]
    print("\n" + "=" * 100)
    print(f"machine: {m['cores']} cores, {m['memory_gb']} GB, {m['machine']}, Python {m['python']}; "
          f"{'quick run' if quick else 'full run'} took {report['duration_s']:,} s")
    print(f"{'figure':<28}{'value':>14}  {'unit':<10}{'goal':>18}  {'':<6}measured as")
    for r in table:
        value = "-" if r["value"] is None else f"{r['value']:,}"
        verdict = "-" if r["meets"] is None else ("ok" if r["meets"] else "BELOW")
        goal = f"{'>=' if r['goal_is'] == 'at least' else '<='} {r['goal']:,g}"
        print(f"{r['key']:<28}{value:>14}  {r['unit']:<10}{goal:>18}  {verdict:<6}{r['measured_as'] or 'not run'}")
    print("\nevery figure:")
    for k, v in results.items():
        print(f"  {k:<44}{v:>14,}")
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written: {RESULTS}")
    return report
