"""One caseworker's verification at once (a request verified inline, as ``hub verify --sync`` and the API's own
worker run it): how long it takes, and how much of that is the hub's own work.

request_latency_ms_p50: one household's verification inline (``hub.stages.pipeline.run_inline``) with all eleven
sources, the simulated agencies (their own process, 200 households of seed 5) answering at once; the median of
REQUESTS runs (5 with --quick), households spread over the population, after one warm-up run (imports, GX's context).
request_overhead_ms_p50: the same with every agency call delayed by OVERHEAD_LATENCY_MS (the agencies'
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
        with agencies(HOUSEHOLDS, f"latency:{OVERHEAD_LATENCY_MS}") as url:
            slow = _child("latency", url, str(HOUSEHOLDS), str(n), "1")
    out = {"request_latency_ms_p50": round(statistics.median(t for t, _ in plain["runs"]) * 1000, 1),
           "request_overhead_ms_p50": round(statistics.median(t - c for t, c in slow["runs"]) * 1000, 1),
           "request_latency_ms_p50_injected": round(statistics.median(t for t, _ in slow["runs"]) * 1000, 1)}
    print(f"one household inline, {n} runs: p50 {out['request_latency_ms_p50']:,.0f} ms; with {OVERHEAD_LATENCY_MS} ms "
          f"per agency call: p50 {out['request_latency_ms_p50_injected']:,.0f} ms, beyond the slowest call "
          f"{out['request_overhead_ms_p50']:,.0f} ms")
    return out


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
