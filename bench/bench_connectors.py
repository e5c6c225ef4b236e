"""Rows per second each connector reads in batch mode from its simulated agency on loopback, and the ratio to a
bare `requests` loop making the same calls (same bodies, same signed headers, no parsing), in the same run; and what
checking the agencies' answer signatures costs: the same fetch with the signature checks left out (the manifest
only read), in the same run, as a ratio of rows/s with and without."""

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


def _unchecked(signed, body, *, source, trusted, nonce, **_):
    """``verify_answer`` without its checks: the manifest read, no signature verified, no hash taken."""
    from connectors.signing import read_manifest

    return read_manifest(signed)


def _timed(c, allows, refs) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = c.fetch(allows, refs, auth_ref="bench")
    return time.perf_counter() - t0, result


def run(quick: bool = False) -> dict:
    from unittest import mock

    from agencies.server import AgencyServer
    from connectors.registry import SOURCES, connector
    from hub.services.bootstrap import initialize

    initialize()
    server = AgencyServer.from_hub_home(households=HOUSEHOLDS // (4 if quick else 1), seed=SEED).start()
    out = {}
    try:
        ids = list(server.population.by_id)[: 500 if quick else 2000]
        print(f"connectors: {len(ids)} persons per source, batch mode, loopback, no faults")
        print(f"{'source':<22}{'rows':>8}{'calls':>7}{'rows/s':>11}{'bare rows/s':>13}{'ratio':>7}"
              f"{'unsigned rows/s':>17}{'signed/unsigned':>17}")
        total_signed = total_unsigned = total_rows = 0.0
        for key in SOURCES:
            allows, refs = _allows(ids, key)
            c = connector(key, server.base_url(key))
            c.fetch(allows[:5], refs, auth_ref="warm-up")  # connection and first-call costs out of the figure
            took, result = _timed(c, allows, refs)
            assert result.status == "complete", (key, result.reason)
            with mock.patch("connectors.base.verify_answer", _unchecked):
                unsigned, plain = _timed(c, allows, refs)
            assert plain.status == "complete" and len(plain.rows) == len(result.rows), key
            took = min(took, _timed(c, allows, refs)[0])  # the better of two, as for the unchecked run below
            with mock.patch("connectors.base.verify_answer", _unchecked):
                unsigned = min(unsigned, _timed(c, allows, refs)[0])
            bare, calls = _bare(server, key, ids, c.credential, c.signing_key)
            rows = len(result.rows)
            ratio = bare / took
            total_signed, total_unsigned, total_rows = total_signed + took, total_unsigned + unsigned, total_rows + rows
            print(f"{key:<22}{rows:>8}{calls:>7}{rows / took:>11,.0f}{rows / bare:>13,.0f}{ratio:>7.2f}"
                  f"{rows / unsigned:>17,.0f}{unsigned / took:>17.3f}")
            out[f"connector_{key}_rows_per_s"] = round(rows / took, 1)
            out[f"connector_{key}_ratio_vs_bare"] = round(ratio, 3)
            out[f"connector_{key}_signed_vs_unchecked"] = round(unsigned / took, 3)
        out["connectors_signed_rows_per_s"] = round(total_rows / total_signed, 1)
        out["connectors_unchecked_rows_per_s"] = round(total_rows / total_unsigned, 1)
        out["connectors_signature_ratio"] = round(total_unsigned / total_signed, 3)
        print(f"all sources: {out['connectors_signed_rows_per_s']:,.0f} rows/s with the answers' signatures checked, "
              f"{out['connectors_unchecked_rows_per_s']:,.0f} without: ratio {out['connectors_signature_ratio']:.3f}")
        return out
    finally:
        server.stop()


if __name__ == "__main__":
    run()
