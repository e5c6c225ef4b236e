"""The simulated agencies as a client sees them: index, formats, credentials, signatures, faults, counters."""

from __future__ import annotations

import csv
import io
import json
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agencies.population import households
from agencies.server import AgencyServer, UnknownFaultProfile
from schemas.contracts import SPECS
from connectors.wire import build_request
from connectors.auth import Credential, credentials_path, load_credentials, request_headers
from core.settings import settings
from core.crypto import keyring

SEED, N = 7, 50
PEOPLE = [p.id_number for h in households(SEED, N) for p in h.members]


def creds() -> dict[str, Credential]:
    return load_credentials(credentials_path(settings().home))


def post(server: AgencyServer, key: str, ids: list[str], *, page: int = 1, credential: Credential | None = None,
         signing_key=None, auth_ref: str = "req-1", body: bytes | None = None, timeout: float = 10, headers=None):
    spec = SPECS[key]
    url = server.base_url(key) + spec.path
    data = body if body is not None else build_request(spec, ids, page)
    h = headers if headers is not None else request_headers(
        method="POST", path=requests.utils.urlparse(url).path, body=data, auth_ref=auth_ref,
        credential=credential or creds()[key], signing_key=signing_key or keyring().signing_key)
    return requests.post(url, data=data, headers=h, timeout=timeout)


def decode(key: str, resp: requests.Response) -> list[dict]:
    spec = SPECS[key]
    if spec.wire == "json":
        return json.loads(resp.content.decode("utf-8"))["data"]
    if spec.wire == "xml":
        root = ET.fromstring(resp.content)
        return [{c.tag: c.text for c in rec} for rec in root.iter("record")]
    assert "GBK" in resp.headers["Content-Type"]
    return list(csv.DictReader(io.StringIO(resp.content.decode("gbk"))))


def test_index_lists_eleven_sources_in_at_least_three_formats(agencies):
    index = requests.get(agencies.url, timeout=5).json()
    keys = [s["key"] for s in index["sources"]]
    assert keys == list(SPECS) and len(keys) == 11
    assert {s["format"] for s in index["sources"]} == {"json", "xml", "csv"}
    assert {s["auth"] for s in index["sources"]} == {"api_key", "hmac"}
    assert len({s["base_url"] for s in index["sources"]}) == 11
    assert "secret" not in json.dumps(index)


@pytest.mark.parametrize("key", list(SPECS))
def test_each_agency_answers_a_signed_query_in_its_own_format(agencies, key):
    resp = post(agencies, key, PEOPLE[:SPECS[key].max_batch])
    assert resp.status_code == 200
    rows = decode(key, resp)
    id_field = SPECS[key].id_field
    assert all(r[id_field] in PEOPLE for r in rows)
    expected = sum(len(agencies.population.rows(key, i) or []) for i in PEOPLE[:SPECS[key].max_batch])
    if SPECS[key].page_size:
        assert int(resp.headers["X-Total"]) == expected
        assert len(rows) == min(expected, SPECS[key].page_size)
    else:
        assert len(rows) == expected
    if key == "household":
        assert len(rows) == SPECS[key].max_batch  # everyone is registered


def test_someone_the_agency_does_not_know_is_reported_not_found(agencies):
    from schemas.codes import id_check_char

    stranger = "21038119500101123"
    stranger += id_check_char(stranger)
    doc = post(agencies, "household", [stranger, PEOPLE[0]]).json()
    assert doc["notFound"] == [stranger] and len(doc["data"]) == 1


def test_paginated_agencies_page_through_everything(agencies):
    key = "social_insurance"
    ids = PEOPLE[:SPECS[key].max_batch]
    first = post(agencies, key, ids)
    pages = int(first.headers["X-Total-Pages"])
    assert pages > 1
    rows = [r for page in range(1, pages + 1) for r in decode(key, post(agencies, key, ids, page=page))]
    assert len(rows) == int(first.headers["X-Total"])
    assert len({json.dumps(r, sort_keys=True) for r in rows}) == len(rows)


def test_a_batch_over_the_limit_is_a_clear_400(agencies):
    resp = post(agencies, "real_estate", PEOPLE[: SPECS["real_estate"].max_batch + 1])
    assert resp.status_code == 400 and "at most 20" in resp.text


@pytest.mark.parametrize("key", list(SPECS))
def test_unsigned_or_unauthorized_requests_are_refused(agencies, key):
    ids = PEOPLE[:3]
    good = creds()[key]
    other_scheme = "hmac" if good.scheme == "api_key" else "api_key"
    cases = {
        "no headers": dict(headers={}),
        "wrong secret": dict(credential=Credential(good.scheme, "wrong")),
        "wrong scheme": dict(credential=Credential(other_scheme, good.secret)),
        "hub key forged": dict(signing_key=Ed25519PrivateKey.generate()),
        "no reference": dict(auth_ref=""),
    }
    for name, kw in cases.items():
        resp = post(agencies, key, ids, **kw)
        assert resp.status_code == 403, name
    # a signed reference replayed with other persons in the body
    spec = SPECS[key]
    url = agencies.base_url(key) + spec.path
    signed = request_headers(method="POST", path=requests.utils.urlparse(url).path, body=build_request(spec, ids),
                             auth_ref="req-1", credential=good, signing_key=keyring().signing_key)
    replay = requests.post(url, data=build_request(spec, PEOPLE[3:6]), headers=signed, timeout=5)
    assert replay.status_code == 403
    stats = agencies.stats()[key]
    assert stats["refused"] == len(cases) + 1 and stats["served"] == 0 and stats["rows"] == 0


def test_a_stale_hmac_timestamp_is_refused(agencies):
    spec = SPECS["tax"]
    url = agencies.base_url("tax") + spec.path
    body = build_request(spec, PEOPLE[:2])
    h = request_headers(method="POST", path=requests.utils.urlparse(url).path, body=body, auth_ref="r",
                        credential=creds()["tax"], signing_key=keyring().signing_key, now=time.time() - 3600)
    assert requests.post(url, data=body, headers=h, timeout=5).status_code == 403


def test_malformed_request_bodies_are_400(agencies):
    for key in ("household", "tax"):
        resp = post(agencies, key, [], body=b"\xff<not")
        assert resp.status_code == 400


def _serve(faults: str, **rates):
    return AgencyServer.from_hub_home(households=N, seed=SEED, faults=faults, fault_rates=rates or None).start()


def test_flaky_answers_5xx_and_429_with_retry_after():
    server = _serve("flaky", flaky=0.5)
    try:
        statuses, retry_after = [], set()
        for _ in range(40):
            r = post(server, "bank", PEOPLE[:5])
            statuses.append(r.status_code)
            if r.status_code == 429:
                retry_after.add(r.headers.get("Retry-After"))
        assert 200 in statuses and 429 in statuses and {500, 502, 503} & set(statuses)
        assert retry_after == {"1"}
        stats = server.stats()["bank"]
        assert stats["throttled"] == statuses.count(429) and stats["errors"] == sum(s >= 500 for s in statuses)
    finally:
        server.stop()


def test_slow_has_latency_and_hanging_responses(monkeypatch):
    monkeypatch.setenv("HUB_AGENCIES_HANG_S", "3")
    server = _serve("slow", hang=0.5)
    try:
        def call(_):
            t0 = time.monotonic()
            try:
                return post(server, "securities", PEOPLE[:2], timeout=2.5).status_code, time.monotonic() - t0
            except requests.exceptions.RequestException:
                return "timeout", time.monotonic() - t0

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(call, range(12)))
        assert all(elapsed >= 0.3 for _, elapsed in results)
        assert "timeout" in [s for s, _ in results] and 200 in [s for s, _ in results]
        assert server.stats()["securities"]["hung"] >= 1
    finally:
        server.stop()


def test_truncated_bodies_are_cut_short():
    server = _serve("truncated", truncated=0.5)
    try:
        broken = 0
        for _ in range(20):
            try:
                r = post(server, "household", PEOPLE[:20])
                json.loads(r.content)
            except (requests.exceptions.RequestException, ValueError):
                broken += 1
        assert broken >= 1 and broken == server.stats()["household"]["truncated"]
    finally:
        server.stop()


def test_dirty_data_shows_every_kind_of_fault():
    from schemas.codes import is_valid_id

    server = _serve("dirty", row=0.1, response=0.3)
    try:
        seen = set()
        for start in range(0, len(PEOPLE) - 10, 10):
            r = post(server, "household", PEOPLE[start:start + 10])
            try:
                doc = json.loads(r.content.decode("utf-8"))
            except UnicodeDecodeError:
                seen.add("wrong encoding")
                continue
            rows = doc["data"]
            if any("xm_v2" in row for row in rows):
                seen.add("renamed field")
            ids = [row["sfzh"] for row in rows]
            if any(not is_valid_id(i) for i in ids):
                seen.add("wrong check digit")
            if any(row.get("dzbm") == "999999" for row in rows):
                seen.add("unknown code")
            if len(ids) != len(set(ids)):
                seen.add("duplicate")
            if any(row.get("xm", row.get("xm_v2", "")) is None for row in rows):
                seen.add("malformed")
        csv_resp = [post(server, "provident_fund", PEOPLE[:60]) for _ in range(8)]
        if any(_not_gbk(r.content) for r in csv_resp):
            seen.add("wrong encoding")
        assert seen >= {"wrong check digit", "unknown code", "duplicate", "renamed field", "malformed",
                        "wrong encoding"}, seen
    finally:
        server.stop()


def _not_gbk(data: bytes) -> bool:
    try:
        data.decode("gbk")
        return data.decode("utf-8", errors="strict") != data.decode("gbk")
    except UnicodeDecodeError:
        return True


def test_down_refuses_connections_for_that_agency_only():
    server = _serve("down:bank")
    try:
        index = requests.get(server.url, timeout=5).json()
        assert "down:bank" in index["faults"]
        with pytest.raises(requests.exceptions.ConnectionError):
            post(server, "bank", PEOPLE[:2], timeout=3)
        assert post(server, "tax", PEOPLE[:2]).status_code == 200
    finally:
        server.stop()


def test_counters_are_readable_over_http(agencies):
    post(agencies, "tax", PEOPLE[:4])
    stats = requests.get(agencies.url + "_stats", timeout=5).json()
    assert stats["tax"]["served"] == 1 and stats["tax"]["requests"] == 1
    assert set(stats) == set(SPECS)


def test_unknown_fault_profiles_are_a_clear_error():
    with pytest.raises(UnknownFaultProfile, match="known: none, flaky"):
        _serve("chaos")
    with pytest.raises(UnknownFaultProfile, match="unknown source"):
        _serve("down:nowhere")


def test_latency_delays_every_call_by_that_long_and_breaks_nothing():
    server = _serve("latency:150")
    try:
        assert server.faults.names == ["latency:150"]
        for key in ("household", "tax", "bank"):
            t0 = time.monotonic()
            assert post(server, key, PEOPLE[:3]).status_code == 200
            assert time.monotonic() - t0 >= 0.15
        stats = server.stats()
        assert all(stats[k]["served"] == 1 and stats[k]["errors"] == 0 for k in ("household", "tax", "bank"))
    finally:
        server.stop()
    for bad in ("latency:", "latency:0", "latency:-5", "latency:1e3", "latency:60001", "latency:１０"):
        with pytest.raises(UnknownFaultProfile, match="latency needs milliseconds"):
            _serve(bad)


def test_a_server_in_its_own_process_freezes_its_population_out_of_the_collectors_way(monkeypatch):
    import gc
    import threading

    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    server = AgencyServer.from_hub_home(households=N, seed=SEED, port=0)
    assert calls == []  # in-process (tests, the demo): nothing frozen
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        for _ in range(100):
            try:
                if requests.get(server.url, timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        assert calls == ["freeze"]
        assert post(server, "tax", PEOPLE[:1]).status_code == 200  # and it answers
    finally:
        server.stop()
        t.join(10)
