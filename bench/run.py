"""`hub bench` / `make bench`: run every benchmark, print a table, write bench/results.json."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import time
from pathlib import Path

BENCHMARKS = ["bench.bench_population", "bench.bench_agencies", "bench.bench_connectors", "bench.bench_validation",
              "bench.bench_ledger", "bench.bench_records", "bench.bench_api", "bench.bench_dags"]
RESULTS = Path(__file__).resolve().parent / "results.json"


def machine() -> dict:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as fh:
            mem_kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        pass
    return {"cores": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1), "python": platform.python_version(),
            "machine": platform.machine()}


def main(quick: bool = False, only: list[str] | None = None) -> dict:
    started = time.monotonic()
    results: dict = {}
    for name in BENCHMARKS:
        if only and not any(o in name for o in only):
            continue
        print(f"\n== {name} ==")
        results.update(importlib.import_module(name).run(quick=quick))
    report = {"machine": machine(), "quick": quick, "at": dt.datetime.now(dt.timezone.utc).isoformat(),
              "duration_s": round(time.monotonic() - started, 1), "results": results}
    print("\n" + "=" * 60)
    print(f"machine: {report['machine']}; duration {report['duration_s']} s{' (quick)' if quick else ''}")
    for k, v in results.items():
        print(f"  {k:<44}{v:>14,}")
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written: {RESULTS}")
    return report
