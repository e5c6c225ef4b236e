"""Rows per second each connector reads in batch mode from its simulated agency on loopback, and the ratio to a
bare `requests` loop making the same calls (same bodies, same signed headers, no parsing), in the same run."""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import datetime as dt
import time

import requests

HOUSEHOLDS, SEED = 1000, 11


def _allows(ids: list[str], key: str):
    from consent.gate import AuthorizationView, MemberConsent, decide

    now = dt.datetime.now(dt.timezone.utc)
    refs = {f"p_{i:032x}": idn for i, idn in enumerate(ids)}
    members = {r: MemberConsent(r, frozenset({key}), dt.date(1900, 1, 1), financial_sources=frozenset({key}))
               for r in refs}
    auth = AuthorizationView("bench", "BENCH", "dibao", now - dt.timedelta(days=1), now + dt.timedelta(days=1), members)
    return [decide(r, key, "dibao", "BENCH", now, [auth]) for r in refs], refs


def _bare(server, key: str, ids: list[str], credential, signing_key) -> tuple[float, int]:
    from connectors.auth import request_headers
    from connectors.wire import build_request
    from schemas.contracts import SPECS

    spec = SPECS[key]
    url = server.base_url(key) + spec.path
    path = requests.utils.urlparse(url).path
    http = requests.Session()
    calls = 0
    t0 = time.perf_counter()
    for start in range(0, len(ids), spec.max_batch):
        page, pages = 1, 1
        while page <= pages:
            body = build_request(spec, ids[start: start + spec.max_batch], page)
            headers = request_headers(method="POST", path=path, body=body, auth_ref="bench", credential=credential,
                                      signing_key=signing_key)
            resp = http.post(url, data=body, headers=headers, timeout=30)
            resp.raise_for_status()
            pages = int(resp.headers.get("X-Total-Pages", 1))
            page += 1
            calls += 1
    return time.perf_counter() - t0, calls


def run(quick: bool = False) -> dict:
    from agencies.server import AgencyServer
    from connectors.registry import SOURCES, connector
    from hub.services.bootstrap import initialize

    initialize()
    server = AgencyServer.from_hub_home(households=HOUSEHOLDS // (4 if quick else 1), seed=SEED).start()
    out = {}
    try:
        ids = list(server.population.by_id)[: 500 if quick else 2000]
        print(f"connectors: {len(ids)} persons per source, batch mode, loopback, no faults")
        print(f"{'source':<22}{'rows':>8}{'calls':>7}{'rows/s':>11}{'bare rows/s':>13}{'ratio':>7}")
        for key in SOURCES:
            allows, refs = _allows(ids, key)
            c = connector(key, server.base_url(key))
            c.fetch(allows[:5], refs, auth_ref="warm-up")  # connection and first-call costs out of the figure
            t0 = time.perf_counter()
            result = c.fetch(allows, refs, auth_ref="bench")
            took = time.perf_counter() - t0
            assert result.status == "complete", (key, result.reason)
            bare, calls = _bare(server, key, ids, c.credential, c.signing_key)
            rows = len(result.rows)
            ratio = bare / took
            print(f"{key:<22}{rows:>8}{calls:>7}{rows / took:>11,.0f}{rows / bare:>13,.0f}{ratio:>7.2f}")
            out[f"connector_{key}_rows_per_s"] = round(rows / took, 1)
            out[f"connector_{key}_ratio_vs_bare"] = round(ratio, 3)
        return out
    finally:
        server.stop()


if __name__ == "__main__":
    run()
