"""The assistance review (精准评估) over a city's records: households reviewed per second, and the staff page's render
time with them behind it.

100,000 households (10,000 with --quick) of the generated population are unified and published as bench_records does
(not timed), each a second time as a re-check for one in five of them (so "since when" walks real version histories);
grants are reported for the households the population's truth says qualify (all but one in ten, so some are missed),
and for one in twenty of those that do not (over-assisted). Then, timed: ``hub.stages.review.run_review`` (every record
decrypted, screened, compared with the grants; the run, its entries and its ledger entry written), and
``GET /console/review`` as staff, 20 loads, p50 (charts and the first page of a list).
"""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import datetime as dt
import statistics
import time
import uuid


def _city(n: int, seed: int) -> int:
    """Publish ``n`` households (a fifth of them twice: a re-check) and their grants; return the residents."""
    from sqlalchemy import insert

    from agencies.population import population_facts
    from bench.bench_records import SOURCES_ALL, _requests, publish, record_inputs
    from core.crypto import keyring
    from core.store import AssistanceGrant, Request, session
    from hub.rules.standards import rules_at

    keys = keyring()
    now = dt.datetime.now(dt.timezone.utc)
    first, later = now - dt.timedelta(days=200), now - dt.timedelta(days=20)
    rules = rules_at(now.date())
    residents, grants = 0, []
    request_ids = _requests(n)
    for j, (request_id, f) in enumerate(zip(request_ids, population_facts(seed, n))):
        applicants, rows = record_inputs(f, keys.pseudonym)
        residents += len(applicants)
        times = (first, later) if j % 5 == 0 else (first,)
        for i, as_of in enumerate(times):
            rid = request_id
            if i:  # the re-check: a request of its own
                rid = uuid.uuid4().hex
                with session() as s:
                    s.add(Request(id=rid, department="MZ-210302", purpose="dibao", case_ref=f"bench-r{j}",
                                  sources=list(SOURCES_ALL), status="running", kind="recheck",
                                  parent_id=request_id))
            ref = publish(rid, applicants, rows, as_of, rules, keys)
        truth = f.truth
        programme = "dibao" if truth.dibao_eligible else "low_income" if truth.low_income_eligible else None
        if programme and j % 10:
            grants.append((ref, programme, request_id))
        elif programme is None and j % 20 == 0:
            grants.append((ref, "dibao", request_id))
    with session() as s:
        s.execute(insert(AssistanceGrant), [
            {"id": uuid.uuid4().hex, "household_ref": ref, "department": "MZ-210302", "programme": p,
             "request_id": rid, "granted_from": (first + dt.timedelta(days=10)).date(), "client_id": "bench",
             "reported_at": now} for ref, p, rid in grants])
    return residents


def run(quick: bool = False) -> dict:
    import logging

    from fastapi.testclient import TestClient

    from bench.scratch import scratch_home

    logging.getLogger("hub.stages.records").setLevel(logging.WARNING)
    n = 10_000 if quick else 100_000
    label = "_10k" if quick else ""  # the report's figures are at 100,000 households
    with scratch_home("hub-bench-review-"):
        from hub.services.clients import create_client
        from hub.stages.review import run_review
        from hub.web.app import create_app

        t0 = time.perf_counter()
        residents = _city(n, seed=13)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = run_review(dt.datetime.now(dt.timezone.utc).date(), residents=residents)
        took = time.perf_counter() - t0
        _, token = create_client("bench staff", "staff")
        api = TestClient(create_app())
        api.post("/console/login", data={"token": token})
        loads = []
        for _ in range(20):
            t1 = time.perf_counter()
            page = api.get("/console/review")
            loads.append((time.perf_counter() - t1) * 1000)
            assert page.status_code == 200 and page.text.count("<svg") == 3
    rate = n / took
    p50 = statistics.median(loads)
    print(f"{n:,} households ({residents:,} residents; built in {built:,.0f} s): reviewed in {took:,.1f} s, "
          f"{rate:,.0f} households/s; missed {result['missed']:,}, needs review {result['review']:,}, "
          f"over-assisted {result['over']:,}; staff page p50 {p50:,.0f} ms over 20 loads")
    return {f"review_households_per_s{label}": round(rate, 1), f"review_page_ms_p50{label}": round(p50, 1)}


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
