"""A department's record read answers only once its ledger entry is durable, whatever happens to the API or the
store: killed with SIGKILL under load, a full disk, a client that leaves mid-read, a slow client, 1,000 connections
at once. Every 200 a client received has its entry; a store that cannot take the entry gets a clear 503 with no
data, and the API serves again by itself when the fault ends. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.settings import settings
from core.store import LedgerEvent, engine, session
from hub.services.clients import create_client
from hub.stages.records import verify_record
from hub.web.app import create_app
from tests.consent.test_ledger_group import _full_disk
from tests.support.households import applied
from tests.support.servers import free_port, rate_limits_off, serve_agencies, serve_api

DEPARTMENT = "MZ-210302"  # the department of tests.support.households.sample's requests


@pytest.fixture(scope="module", autouse=True)
def _no_rate_limit():
    yield from rate_limits_off()


@pytest.fixture(scope="module")
def world(module_database):
    """A department's token and one household record it has an open case for, on the module's own store."""
    from hub.stages.records import record_of_request

    agencies = serve_agencies("none")
    next(agencies)
    try:
        request_id = applied(3, sources=("household", "tax"))
    finally:
        agencies.close()
    record, _ = record_of_request(request_id)
    _, token = create_client("caseworker", "department", DEPARTMENT)
    path = f"/v1/households/{record.household_ref}/record?purpose=dibao"
    return {"token": token, "path": path, "household": record.household_ref, "backend": module_database}


def _reads(household: str) -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(LedgerEvent).where(
            LedgerEvent.kind == "record.read", LedgerEvent.payload["household_ref"].as_string() == household))


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api_process(world, tmp_path):
    """``hub api`` in its own process on the module's store; killed at the end if the test has not."""
    port = free_port()
    env = {**os.environ, "HUB_DATABASE_URL": settings().database_url, "HUB_API_RATE": "0"}
    proc = serve_api(env, port, tmp_path / "api.log")
    yield proc, f"http://127.0.0.1:{port}"
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)


def test_every_answer_a_client_received_has_its_entry_when_the_api_is_killed_under_load(world, api_process):
    proc, base = api_process
    before = _reads(world["household"])
    received, stop = [], threading.Event()

    def client() -> None:
        with requests.Session() as http:
            while not stop.is_set():
                try:
                    resp = http.get(base + world["path"], headers=_auth(world["token"]), timeout=10)
                except requests.RequestException:
                    return  # the server is gone
                if resp.status_code == 200:
                    assert resp.json()["household_id"] == world["household"]
                    received.append(1)

    clients = [threading.Thread(target=client) for _ in range(16)]
    for t in clients:
        t.start()
    deadline = time.monotonic() + 30
    while len(received) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-load: entries queued, groups committing, answers being written
    proc.wait(30)
    stop.set()
    for t in clients:
        t.join(30)
    answered = len(received)
    assert answered >= 200, "the load did not get going"
    entries = _reads(world["household"]) - before
    assert entries >= answered, f"{answered} answers received but only {entries} ledger entries"


def test_a_full_disk_answers_503_without_data_and_the_api_recovers_when_space_returns(world):
    if world["backend"] != "sqlite":
        pytest.skip("the full disk is simulated on SQLite (PRAGMA max_page_count); PostgreSQL's store that does "
                    "not answer is the next test")
    api = TestClient(create_app())
    before = _reads(world["household"])
    undo = _full_disk(settings().database_url)
    try:
        ok = 0
        for _ in range(500):  # the free pages left in the file take a few entries first
            resp = api.get(world["path"], headers=_auth(world["token"]))
            if resp.status_code != 200:
                break
            ok += 1
        assert resp.status_code == 503 and resp.headers["retry-after"]
        assert "content" not in resp.text and world["household"] not in resp.text
        assert resp.json()["error"] == {"code": "store_unavailable", "field": None,
                                        "message": "the hub's store is not available now; try again shortly"}
        assert _reads(world["household"]) - before == ok  # every 200 has its entry, the refused read none
    finally:
        undo()
    resp = api.get(world["path"], headers=_auth(world["token"]))
    assert resp.status_code == 200 and verify_record(resp.json()["content"], resp.json()["signature"])
    assert _reads(world["household"]) - before == ok + 1


def test_a_store_that_does_not_answer_gets_503_in_time_and_the_api_recovers(world, monkeypatch):
    from sqlalchemy import text

    monkeypatch.setenv("HUB_LEDGER_WAIT_S", "0.5")
    from consent import ledger

    monkeypatch.setattr(ledger, "_writers", {})
    api = TestClient(create_app())
    blocker = engine(settings().database_url).connect()
    try:
        if world["backend"] == "postgresql":
            blocker.execute(text("BEGIN"))
            blocker.execute(text("LOCK TABLE ledger_events IN EXCLUSIVE MODE"))
        else:
            blocker.exec_driver_sql("BEGIN IMMEDIATE")
        t0 = time.monotonic()
        resp = api.get(world["path"], headers=_auth(world["token"]))
        assert resp.status_code == 503 and resp.headers["retry-after"] and "content" not in resp.text
        assert time.monotonic() - t0 < 10, "a store that does not answer was waited for, not refused"
    finally:
        blocker.rollback()
        blocker.close()
    monkeypatch.setenv("HUB_LEDGER_WAIT_S", "30")  # recovery is the point here, not how fast a busy machine gets there
    assert api.get(world["path"], headers=_auth(world["token"])).status_code == 200


def test_a_token_revoked_by_another_process_reads_nothing_at_once(world):
    """The record read admits its bearer from the process's recent lookups, and its own statement checks the client
    again: a token deactivated elsewhere (the CLI is another process) reads nothing from the next request on."""
    from sqlalchemy import update

    from core.store import ApiClient
    from hub.services.clients import create_client

    client, token = create_client("caseworker, soon gone", "department", DEPARTMENT)
    api = TestClient(create_app())
    assert api.get(world["path"], headers=_auth(token)).status_code == 200  # now known to this process
    with session() as s:  # as `hub clients deactivate` in another process would leave it
        s.execute(update(ApiClient).where(ApiClient.id == client.id).values(active=False))
    before = _reads(world["household"])
    resp = api.get(world["path"], headers=_auth(token))
    assert resp.status_code == 401 and "content" not in resp.text
    assert _reads(world["household"]) == before


def _raw_get(base: str, path: str, token: str) -> bytes:
    host = base.removeprefix("http://")
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            .encode())


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def test_clients_that_leave_mid_read_or_trickle_their_request_do_not_stop_the_others(world, api_process):
    _, base = api_process
    request = _raw_get(base, world["path"], world["token"])
    for _ in range(20):  # the request sent, the connection closed before the answer
        with _connect(base) as s:
            s.sendall(request)
    slow = _connect(base)  # a client that sends half its request and then nothing
    slow.sendall(request[: len(request) // 2])
    try:
        with requests.Session() as http:
            for _ in range(20):
                resp = http.get(base + world["path"], headers=_auth(world["token"]), timeout=10)
                assert resp.status_code == 200 and resp.json()["household_id"] == world["household"]
    finally:
        slow.close()


def test_a_thousand_connections_at_once_each_get_an_answer_and_the_api_serves_after(world, api_process):
    _, base = api_process
    request = _raw_get(base, world["path"], world["token"])
    before = _reads(world["household"])
    statuses: list[int] = []
    lock = threading.Lock()

    def one(batch: int) -> None:
        socks = []
        for _ in range(batch):
            s = _connect(base)
            s.sendall(request)
            socks.append(s)
        for s in socks:
            with s:
                head = b""
                while b"\r\n" not in head:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                with lock:
                    statuses.append(int(head[9:12]) if head.startswith(b"HTTP/1.1 ") else 0)

    threads = [threading.Thread(target=one, args=(100,)) for _ in range(10)]  # 1,000 sockets open together
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(statuses) == 1000
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert _reads(world["household"]) - before >= statuses.count(200) > 0
    with requests.Session() as http:
        assert http.get(base + world["path"], headers=_auth(world["token"]), timeout=10).status_code == 200


def test_hub_api_workers_serve_from_several_processes_on_postgresql_and_refuse_sqlite(world, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "HUB_DATABASE_URL": settings().database_url, "HUB_API_RATE": "0"}
    if world["backend"] == "sqlite":
        out = subprocess.run([str(Path(sys.executable).parent / "hub"), "api", "--workers", "2", "--port", "9"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and "needs PostgreSQL" in out.stderr and "Traceback" not in out.stderr
        return
    port = free_port()
    proc = serve_api(env, port, tmp_path / "api.log", "--workers", "2")
    try:
        def workers() -> list[str]:  # uvicorn's supervisor spawns them (beside multiprocessing's resource tracker)
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]

        deadline = time.monotonic() + 60
        while len(workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(workers()) == 2
        before = _reads(world["household"])
        with requests.Session() as http:
            answers = [http.get(f"http://127.0.0.1:{port}{world['path']}", headers=_auth(world["token"]), timeout=10)
                       for _ in range(40)]
        assert all(a.status_code == 200 and verify_record(a.json()["content"], a.json()["signature"]) for a in answers)
        assert _reads(world["household"]) - before == 40
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_read_runs_on_the_event_loop_on_postgresql_and_in_a_worker_thread_on_sqlite(world, monkeypatch):
    """While the app serves (its lifespan run), a PostgreSQL store's read runs its statement on the app's asyncio
    engine and awaits its entry, never in a worker thread; SQLite's read runs in a worker thread. The same answers
    either way: 200 with its entry, a refusal with its record.read_denied entry, a token deactivated meanwhile 401."""
    from hub.services import reads
    from hub.services.clients import deactivate

    threaded = []
    real = reads.read_record_with_token
    monkeypatch.setattr(reads, "read_record_with_token", lambda *a, **kw: threaded.append(1) or real(*a, **kw))
    client_id, token = create_client("caseworker-2", "department", DEPARTMENT)
    before = _reads(world["household"])
    with TestClient(create_app()) as api:
        for _ in range(3):  # the first makes the view (in a worker thread), the others find it made
            answer = api.get(world["path"], headers=_auth(token))
            assert answer.status_code == 200 and answer.json()["household_id"] == world["household"]
        assert verify_record(answer.json()["content"], answer.json()["signature"])
        assert api.get(world["path"].replace("dibao", "medical"), headers=_auth(token)).status_code == 404
        deactivate(client_id.id)
        assert api.get(world["path"], headers=_auth(token)).status_code == 401
    assert _reads(world["household"]) == before + 3
    with session() as s:
        denied = [p for p in s.scalars(select(LedgerEvent.payload).where(LedgerEvent.kind == "record.read_denied"))
                  if p.get("household_ref") == world["household"][:40] and p.get("purpose") == "medical"]
    assert denied and denied[-1]["why"] in ("no_policy", "no_open_case")
    assert (threaded == []) if world["backend"] == "postgresql" else len(threaded) == 4  # 3 reads, 1 refused
