"""The hub's own worker (hub.services.worker): claims a received request once, whoever else looks, runs it with the
pipeline's stages against the simulated agencies, takes over a claim whose worker is gone, and leaves a failed run
in a state the request page explains. Each test on a store of its own: a worker claims whatever is received."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import subprocess
import threading
import time

import pytest
from sqlalchemy import select

from core.store import LedgerEvent, Request, session, utcnow
from hub.services import worker as worker_module
from hub.services.requests import request_progress
from hub.services.worker import WORKER_ERROR, Worker
from hub.stages import pipeline
from hub.stages.intake import create_request
from tests.support.households import sample

SOURCES = ["household", "tax", "real_estate"]


@pytest.fixture(autouse=True)
def _own(own_store):
    yield


def _request(k: int = 3) -> str:
    return create_request(sample(k, sources=SOURCES))


def _row(request_id: str) -> Request:
    with session() as s:
        req = s.get(Request, request_id)
        s.expunge(req)
        return req


def _entries(kind: str, request_id: str) -> list[dict]:
    with session() as s:
        return [p for p in s.scalars(select(LedgerEvent.payload).where(LedgerEvent.kind == kind))
                if p.get("request_id") == request_id]


def _counting(monkeypatch) -> dict[str, int]:
    """pipeline.run_inline as it is, counting its calls per request."""
    runs: dict[str, int] = {}
    real = pipeline.run_inline
    lock = threading.Lock()

    def counted(request_id, **kw):
        with lock:
            runs[request_id] = runs.get(request_id, 0) + 1
        return real(request_id, **kw)

    monkeypatch.setattr(pipeline, "run_inline", counted)
    return runs


def test_the_worker_claims_a_received_request_and_runs_it_to_published(agencies):
    rid = _request()
    assert request_progress(rid, _row(rid).department).stage == "waiting"
    outcome = Worker().run_once()
    assert outcome is not None and outcome.request_id == rid and outcome.status == "published"
    req = _row(rid)
    assert req.status == "published" and req.household_ref and req.lease_owner is None and req.lease_until is None
    started = _entries("verification.triggered", rid)
    assert len(started) == 1 and started[0]["driver"] == "worker" and started[0]["run_id"].startswith("worker:")
    assert Worker().run_once() is None  # nothing left to claim
    progress = request_progress(rid, req.department)
    assert progress.stage == "published" and progress.finished
    assert [s.source for s in progress.sources] == SOURCES and {s.step for s in progress.sources} == {"checked"}


def test_of_many_claimers_at_once_exactly_one_gets_the_request():
    rid = _request()
    workers = [Worker() for _ in range(6)]
    barrier = threading.Barrier(len(workers))
    claims = []

    def claim(w):
        barrier.wait()
        claims.append(w.claim())

    threads = [threading.Thread(target=claim, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [c for c in claims if c is not None]
    assert len(won) == 1 and won[0].request_id == rid
    req = _row(rid)
    assert req.status == "running" and req.lease_owner == won[0].owner
    assert len(_entries("verification.triggered", rid)) == 1


def test_two_workers_at_once_run_each_request_exactly_once(agencies, monkeypatch):
    rids = [_request(k) for k in (3, 5, 8)]
    runs = _counting(monkeypatch)
    done: dict[str, list] = {}
    barrier = threading.Barrier(2)

    def drain(name):
        barrier.wait()
        done[name] = Worker().drain()

    threads = [threading.Thread(target=drain, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert runs == {rid: 1 for rid in rids}
    assert sorted(o.request_id for o in done["a"] + done["b"]) == sorted(rids)
    assert {_row(rid).status for rid in rids} == {"published"}
    assert all(len(_entries("verification.triggered", rid)) == 1 for rid in rids)


def test_the_sweep_leaves_a_request_just_received_elsewhere_to_whoever_made_it():
    rid = _request()
    assert Worker().claim(settled_s=worker_module.SETTLE_S) is None  # its maker may be running it right now
    with session() as s:
        s.get(Request, rid).created_at = utcnow() - dt.timedelta(seconds=worker_module.SETTLE_S + 1)
    claim = Worker().claim(settled_s=worker_module.SETTLE_S)
    assert claim is not None and claim.request_id == rid


def _held_by(rid: str, owner: str, until: dt.datetime) -> None:
    with session() as s:
        req = s.get(Request, rid)
        req.status, req.lease_owner, req.lease_until = "running", owner, until


def test_a_claim_whose_holder_died_is_taken_over_after_its_lease(agencies):
    rid = _request()
    _held_by(rid, "another-host:4242:99:1", utcnow() + dt.timedelta(seconds=60))
    assert Worker().claim() is None  # its lease holds: not ours
    _held_by(rid, "another-host:4242:99:1", utcnow() - dt.timedelta(seconds=1))
    w = Worker()
    outcome = w.run_once()
    assert outcome is not None and outcome.request_id == rid and outcome.status == "published"
    assert _row(rid).lease_owner is None
    assert [e.get("taken_over") for e in _entries("verification.triggered", rid)] == [True]


def test_on_this_host_a_claim_of_a_process_that_is_gone_is_taken_over_at_once():
    rid = _request()
    gone = subprocess.Popen(["true"])
    gone.wait()
    _held_by(rid, f"{socket.gethostname()}:{gone.pid}:1:1", utcnow() + dt.timedelta(seconds=600))
    claim = Worker().claim()
    assert claim is not None and claim.request_id == rid and claim.taken_over


def test_a_failed_run_leaves_the_request_failed_and_the_page_explains_it(monkeypatch, caplog):
    rid = _request()
    secret = sample(3)["members"][0]["id_number"]

    def broken(request_id, **kw):
        raise RuntimeError(f"agency said something about {secret}")

    monkeypatch.setattr(pipeline, "run_inline", broken)
    with caplog.at_level(logging.DEBUG, logger="hub"):
        outcome = Worker().run_once(rid)
    assert outcome is not None and outcome.status == "failed"
    req = _row(rid)
    assert req.status == "failed" and req.lease_owner is None
    failed = _entries("publish.failed", rid)
    assert failed == [{"request_id": rid, "reason": WORKER_ERROR, "error": "RuntimeError"}]
    assert secret not in caplog.text and rid in caplog.text
    progress = request_progress(rid, req.department)
    assert progress.stage == "failed" and progress.finished and progress.why == WORKER_ERROR
    assert {s.step for s in progress.sources} == {"not_asked"}
    assert Worker().run_once() is None  # not retried by itself: the page tells the caseworker whom to ask


def test_progress_follows_the_stages_as_the_store_holds_them(agencies):
    rid = _request()
    dept = _row(rid).department
    claim = Worker().claim(rid)
    assert claim is not None
    p = request_progress(rid, dept)
    assert p.stage == "asking" and {s.step for s in p.sources} == {"asking"} and p.answered == 0
    pipeline.fetch_many([rid])
    p = request_progress(rid, dept)
    assert p.stage == "checking" and p.answered == len(SOURCES)
    assert {s.step for s in p.sources} <= {"answered", "incomplete"} and all(s.rows >= 1 for s in p.sources
                                                                            if s.source == "household")


def test_the_worker_thread_runs_the_requests_it_receives_and_stops(agencies, monkeypatch):
    from hub.services.requests import trigger_verification

    monkeypatch.delenv("HUB_AIRFLOW_URL", raising=False)
    monkeypatch.setattr(worker_module, "POLL_S", 60.0)  # so that only the wake-up can start it soon (the sweep
    # would leave it SETTLE_S anyway)
    w = Worker().start()
    try:
        assert worker_module.enabled()
        rid = _request()
        published = threading.Event()
        real = pipeline.run_inline

        def watched(request_id, **kw):
            try:
                return real(request_id, **kw)
            finally:
                published.set()

        monkeypatch.setattr(pipeline, "run_inline", watched)
        assert trigger_verification(rid) is None
        assert published.wait(120)
    finally:
        w.stop(timeout=120)
    assert _row(rid).status == "published"


def test_the_worker_validates_in_its_warm_processes_and_stops_them(agencies, monkeypatch):
    """With HUB_VALIDATION_PROCESSES above 0 the worker starts a pool of warm processes (schemas.parallel) and the
    sources' suites run there, not in the API's process; the pool ends with the worker."""
    from hub.services.requests import trigger_verification
    from schemas import parallel

    monkeypatch.delenv("HUB_AIRFLOW_URL", raising=False)
    monkeypatch.setenv("HUB_VALIDATION_PROCESSES", "2")
    w = Worker().start()
    try:
        assert w._pool is not None and parallel._pool is w._pool and w._pool.wait(180)

        def not_here(*args, **kwargs):
            raise AssertionError("a source validated in the API's process")

        monkeypatch.setattr(parallel, "validate", not_here)  # the pool's processes keep their own
        rid = _request()
        assert trigger_verification(rid) is None
        for _ in range(600):
            if _row(rid).status in ("published", "failed"):
                break
            time.sleep(0.2)
    finally:
        w.stop(timeout=120)
    assert _row(rid).status == "published" and parallel._pool is None


def test_hub_validation_processes_is_a_whole_number(monkeypatch):
    from core.settings import settings

    monkeypatch.setenv("HUB_VALIDATION_PROCESSES", "3")
    assert settings().validation_processes == 3
    monkeypatch.delenv("HUB_VALIDATION_PROCESSES")
    assert 1 <= settings().validation_processes <= 4
    for bad in ("-1", "two", "1.5"):
        monkeypatch.setenv("HUB_VALIDATION_PROCESSES", bad)
        with pytest.raises(ValueError, match="HUB_VALIDATION_PROCESSES") as exc:
            settings().validation_processes
        assert bad not in str(exc.value)


@pytest.mark.parametrize("value, on", [("0", False), ("off", False), ("1", True), ("", True)])
def test_hub_inline_worker_turns_the_worker_on_or_off(monkeypatch, value, on):
    monkeypatch.delenv("HUB_AIRFLOW_URL", raising=False)
    monkeypatch.setenv("HUB_INLINE_WORKER", value)
    assert worker_module.enabled() is on
    monkeypatch.setenv("HUB_AIRFLOW_URL", "http://127.0.0.1:9")
    assert worker_module.enabled() is False  # a scheduler runs the requests


def test_a_bad_hub_inline_worker_names_the_variable_only(monkeypatch):
    monkeypatch.setenv("HUB_INLINE_WORKER", "maybe-secret")
    with pytest.raises(ValueError, match="HUB_INLINE_WORKER") as exc:
        worker_module.enabled()
    assert "maybe-secret" not in str(exc.value)


def test_hub_verify_sync_leaves_a_request_another_live_worker_runs_alone(monkeypatch, capsys):
    from hub.cli import main

    rid = _request()
    other = Worker().claim(rid)  # the API's worker of this (live) process, running it now
    assert other is not None
    runs = _counting(monkeypatch)
    assert main(["verify", rid, "--sync"]) == 1
    assert runs == {} and f"request {rid} is being verified by another process" in capsys.readouterr().err
    req = _row(rid)
    assert req.status == "running" and req.lease_owner == other.owner  # untouched


def test_hub_verify_sync_claims_the_request_so_no_worker_takes_it_meanwhile(agencies, monkeypatch, capsys):
    from hub.cli import main

    rid = _request()
    seen: dict = {}
    real = pipeline.run_inline

    def watched(request_id, **kw):  # while the command runs it, a worker finds nothing to take
        seen["status"] = _row(request_id).status
        seen["claim"] = Worker().claim(request_id)
        return real(request_id, **kw)

    monkeypatch.setattr(pipeline, "run_inline", watched)
    assert main(["verify", rid, "--sync"]) == 0
    assert seen == {"status": "running", "claim": None}
    req = _row(rid)
    assert req.status == "published" and req.lease_owner is None and req.lease_until is None
    assert '"status": "published"' in capsys.readouterr().out
