"""Records per second a simulated agency serves in batch on loopback (one client, keep-alive, full batches).

One agency per wire format (JSON, XML, GBK CSV), each queried with batches at its limit for a fixed time.
"""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import time

import requests

HOUSEHOLDS = 2000
SEED = 11


def _measure(server, key: str, ids: list[str], seconds: float) -> dict:
    from connectors.auth import credentials_path, load_credentials, request_headers
    from connectors.wire import build_request
    from core.crypto import keyring
    from core.settings import settings
    from schemas.contracts import SPECS

    spec = SPECS[key]
    url = server.base_url(key) + spec.path
    path = requests.utils.urlparse(url).path
    credential = load_credentials(credentials_path(settings().home))[key]
    signing = keyring().signing_key
    http = requests.Session()
    calls = rows = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    i = 0
    while time.perf_counter() < deadline:
        batch = ids[i: i + spec.max_batch] or ids[: spec.max_batch]
        i = (i + spec.max_batch) % len(ids)
        body = build_request(spec, batch)
        headers = request_headers(method="POST", path=path, body=body, auth_ref="bench", credential=credential,
                                  signing_key=signing)
        resp = http.post(url, data=body, headers=headers, timeout=30)
        resp.raise_for_status()
        calls += 1
        rows += int(resp.headers["X-Total"])  # the agencies measured here do not paginate
    elapsed = time.perf_counter() - t0
    return {"format": spec.wire, "calls": calls, "rows": rows, "rows_per_s": rows / elapsed,
            "persons_per_s": calls * spec.max_batch / elapsed}


def run(quick: bool = False) -> dict:
    from agencies.server import AgencyServer
    from hub.services.bootstrap import initialize

    initialize()
    server = AgencyServer.from_hub_home(households=HOUSEHOLDS // (4 if quick else 1), seed=SEED).start()
    try:
        ids = list(server.population.by_id)
        out = {}
        print(f"agencies: {len(ids)} persons, one client, keep-alive, full batches")
        print(f"{'source':<18}{'format':<8}{'calls':>7}{'rows/s':>12}{'persons/s':>12}")
        for key in ("household", "tax", "provident_fund", "bank"):
            m = _measure(server, key, ids, 1.0 if quick else 3.0)
            print(f"{key:<18}{m['format']:<8}{m['calls']:>7}{m['rows_per_s']:>12,.0f}{m['persons_per_s']:>12,.0f}")
            out[f"agency_{key}_rows_per_s"] = round(m["rows_per_s"], 1)
            out[f"agency_{key}_persons_per_s"] = round(m["persons_per_s"], 1)
        return out
    finally:
        server.stop()


if __name__ == "__main__":
    run()
