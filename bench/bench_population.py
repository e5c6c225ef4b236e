"""Population generator: persons per second (identities with unique IDs + every source's facts) and peak memory.

Each size runs in a fresh subprocess, so its peak resident set (ru_maxrss) is its own: the interpreter and
imports, the fixed 32 MB ID bitmap and whatever the stream holds (nothing grows with the population).
Usage: ``python -m bench.bench_population [--quick]``.
"""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = 2026
SIZES = {False: (100_000, 1_000_000), True: (10_000, 100_000)}  # persons, by quick


def _label(persons: int) -> str:
    return f"{persons // 1_000_000}m" if persons % 1_000_000 == 0 else f"{persons // 1000}k"


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
    return kb / 1024


def measure(persons_wanted: int) -> dict:
    """Stream households until persons_wanted persons have identities and facts (run in a fresh process)."""
    import resource

    from agencies.population import facts, population

    baseline = _rss_mb()
    persons = households = rows = 0
    started = time.perf_counter()
    for hh in population(SEED, persons_wanted):  # at least one person per household: never exhausted first
        result = facts(SEED, hh)
        households += 1
        persons += len(hh.members)
        rows += sum([len(r) for table in result.by_source.values() for r in table.values()])
        if persons >= persons_wanted:
            break
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"persons": persons, "households": households, "rows": rows, "seconds": round(elapsed, 2),
            "persons_per_s": round(persons / elapsed, 1), "rows_per_s": round(rows / elapsed, 1),
            "baseline_rss_mb": round(baseline, 1), "peak_rss_mb": round(peak_mb, 1)}


def _in_subprocess(persons: int) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-m", "bench.bench_population", "--child", str(persons)], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> dict:
    print("population: identities (unique IDs) + facts of all ten sources, streamed, one process per size")
    print(f"{'persons':>10}{'households':>12}{'rows':>12}{'seconds':>9}{'persons/s':>11}{'rows/s':>11}"
          f"{'base MB':>9}{'peak MB':>9}")
    results = {}
    for persons in SIZES[quick]:
        m = _in_subprocess(persons)
        print(f"{m['persons']:>10,}{m['households']:>12,}{m['rows']:>12,}{m['seconds']:>9.1f}"
              f"{m['persons_per_s']:>11,.0f}{m['rows_per_s']:>11,.0f}{m['baseline_rss_mb']:>9.1f}"
              f"{m['peak_rss_mb']:>9.1f}")
        label = _label(persons)
        results[f"population_persons_per_s_{label}"] = m["persons_per_s"]
        results[f"population_peak_rss_mb_{label}"] = m["peak_rss_mb"]
    return results


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(measure(int(argv[1]))))
        return
    print(json.dumps(run(quick="--quick" in argv), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
