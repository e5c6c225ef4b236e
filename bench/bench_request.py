"""One caseworker's verification at once (a request verified inline, as ``hub verify --sync`` and the API's own
worker run it): how long it takes, and how much of that is the hub's own work.

request_latency_ms_p50: one household's verification inline (``hub.stages.pipeline.run_inline``) with all eleven
sources, the simulated agencies (their own process, 200 households of seed 5) answering at once, the sources' suites
validated side by side in a pool of warm processes as the API's worker has it (HUB_VALIDATION_PROCESSES, default the
machine's cores: schemas.parallel); the median of REQUESTS runs (5 with --quick), households spread over the
population, after the pool is warm and one warm-up run (imports, GX's context).
request_latency_ms_p50_one_process: the same with every suite validated in the verifying process itself (no pool:
``hub verify --sync``, an Airflow task).
request_overhead_ms_p50: the same (in the pool) with every agency call delayed by OVERHEAD_LATENCY_MS (the agencies'
``latency:<ms>`` profile), minus the slowest agency call of that verification (each call timed in the client): the
time the hub adds beyond the agency it waits for longest.

Each series runs in a fresh process of its own (bench.bench_reverify's ``latency`` phase), on a scratch HUB_HOME.
With HUB_BENCH_PROFILE=DIR each runs under cProfile and leaves its statistics in DIR (``latency.prof``/``.txt``).
"""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import statistics

HOUSEHOLDS = 200
REQUESTS = 15


def run(quick: bool = False, runs: int | None = None) -> dict:
    from bench.bench_reverify import OVERHEAD_LATENCY_MS, _child, agencies
    from bench.scratch import scratch_home

    n = runs or (5 if quick else REQUESTS)
    with scratch_home("hub-bench-request-"):
        with agencies(HOUSEHOLDS) as url:
            plain = _child("latency", url, str(HOUSEHOLDS), str(n), "0")
            single = _child("latency", url, str(HOUSEHOLDS), str(n), "0", "0")
        with agencies(HOUSEHOLDS, f"latency:{OVERHEAD_LATENCY_MS}") as url:
            slow = _child("latency", url, str(HOUSEHOLDS), str(n), "1")
    p50 = lambda xs: round(statistics.median(xs) * 1000, 1)  # noqa: E731
    out = {"request_latency_ms_p50": p50(t for t, _ in plain["runs"]),
           "request_overhead_ms_p50": p50(t - c for t, c in slow["runs"]),
           "request_latency_ms_p50_injected": p50(t for t, _ in slow["runs"]),
           "request_latency_ms_p50_one_process": p50(t for t, _ in single["runs"])}
    one_process = out["request_latency_ms_p50_one_process"]
    print(f"one household inline, {n} runs, sources validated side by side in the worker's warm processes: p50 "
          f"{out['request_latency_ms_p50']:,.0f} ms (all in one process: {one_process:,.0f} ms); with "
          f"{OVERHEAD_LATENCY_MS} ms per agency call: p50 {out['request_latency_ms_p50_injected']:,.0f} ms, "
          f"beyond the slowest call {out['request_overhead_ms_p50']:,.0f} ms")
    return out


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
