"""Circuits shared by every process of the hub (connectors.transport.SharedBreakers, the hub's BREAKERS): a down
agency opens one circuit for all the processes calling it, not one per process; one process takes the trial call
after the cooldown; a success closes it for all; a Retry-After one process was told holds the others back; a store
that does not answer leaves each process its own breaker. Two SharedBreakers in one test stand for two processes
(they share the store only); one test runs two real processes against an agency that is down."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.transport import AgencyError, Failure, Policy, SharedBreakers, Transport
from core.store import AgencyCircuit, session

ADDRESS = "http://127.0.0.1:9/tax/"
POLICY = Policy(breaker_threshold=3, breaker_cooldown=60.0)


@pytest.fixture
def two():
    a, b = SharedBreakers(), SharedBreakers()
    a.reset()
    yield a.of(ADDRESS, POLICY), b.of(ADDRESS, POLICY)
    a.reset()


def _stored() -> AgencyCircuit | None:
    with session() as s:
        row = s.scalar(select(AgencyCircuit))
        if row is not None:
            s.expunge(row)
        return row


def test_failures_in_one_process_open_the_circuit_for_the_other(database, two):
    a, b = two
    for _ in range(POLICY.breaker_threshold - 1):
        a.failure()
    assert b.allow() and a.allow()  # not yet
    b.failure()  # the third, counted together
    assert not a.allow() and not b.allow()
    row = _stored()
    assert row.failures == 3 and row.opened_at is not None and row.key != ADDRESS  # the address's hash, not it


def test_after_the_cooldown_one_process_takes_the_trial_and_a_success_closes_it_for_all(database, two, monkeypatch):
    a, b = two
    for _ in range(POLICY.breaker_threshold):
        a.failure()
    with session() as s:  # the cooldown has passed
        s.get(AgencyCircuit, a.key).opened_at -= dt.timedelta(seconds=POLICY.breaker_cooldown + 1)
    assert b.pause() == 0.0  # asking how long to wait takes no trial
    assert [a.allow(), b.allow()] == [True, False]  # the trial is one process's
    a.success()
    assert a.allow() and b.allow()
    assert _stored().failures == 0 and _stored().opened_at is None


def test_a_retry_after_holds_back_every_process(database, two):
    a, b = two
    assert b.pause() == 0.0
    a.hold(5.0)
    assert 4.0 < b.pause() <= 5.0
    a.hold(1.0)  # a shorter one does not shorten it
    assert 4.0 < b.pause() <= 5.0


def test_the_transport_waits_for_a_retry_after_another_process_was_told(database, two, monkeypatch):
    """Before its call, a transport sleeps the time another process's Retry-After still holds; one that cannot
    wait that long within its deadline gives up at once."""
    from connectors import transport as t

    a, _ = two
    a.hold(30.0)
    slept = []
    monkeypatch.setattr(t.time, "sleep", lambda s: slept.append(s))
    caller = Transport("tax", ADDRESS, policy=Policy(retries=0, deadline=5.0), breakers=SharedBreakers())
    with pytest.raises(AgencyError) as failed:
        caller.post(ADDRESS, b"{}", {})
    assert failed.value.failure is Failure.DEADLINE and slept == []
    with session() as s:
        s.get(AgencyCircuit, a.key).not_before -= dt.timedelta(seconds=29)  # a second left
    with pytest.raises(AgencyError) as failed:
        caller.post(ADDRESS, b"{}", {})
    assert failed.value.failure is Failure.UNREACHABLE and len(slept) == 1 and 0.5 < slept[0] <= 1.0


def test_a_store_that_does_not_answer_leaves_each_process_its_own_breaker(database, two, monkeypatch, caplog):
    from connectors import transport as t

    a, _ = two

    class Down:
        def connect(self):
            from sqlalchemy.exc import OperationalError

            raise OperationalError("SELECT", {}, Exception("store down"))

        begin = connect

    monkeypatch.setattr(t, "engine", lambda: Down())
    with caplog.at_level(logging.WARNING, logger="connectors.transport"):
        for _ in range(POLICY.breaker_threshold):
            assert a.allow()
            a.failure()
        assert not a.allow()  # the process's own breaker opened
    assert "the store did not answer" in caplog.text and ADDRESS not in caplog.text


_WORKER = """
import json, sys
from connectors.transport import AgencyError, Policy, Transport
transport = Transport("tax", sys.argv[1], policy=Policy(retries=0, breaker_threshold=5, breaker_cooldown=600))
attempts, open_ = [], 0
for _ in range(20):
    try:
        transport.post(sys.argv[1] + "persons", b"{}", {}, on_attempt=lambda: attempts.append(1))
    except AgencyError as exc:
        open_ += exc.failure.value == "CIRCUIT_OPEN"
print(json.dumps({"attempts": len(attempts), "circuit_open": open_}))
"""


def test_two_processes_calling_an_agency_that_is_down_open_one_circuit(database, monkeypatch):
    """Two worker processes, 20 calls each, to the tax agency of `hub agencies serve --faults down:tax`: together
    they call it about as often as one process would (the threshold, and at most one more per process that raced),
    not once per process; every other call meets the open circuit."""
    from agencies.server import AgencyServer

    SharedBreakers().reset()
    server = AgencyServer.from_hub_home(households=5, seed=7, faults="down:tax").start()
    try:
        index = json.loads(__import__("requests").get(server.url, timeout=5).content)
        address = next(s["base_url"] for s in index["sources"] if s["key"] == "tax")
        root = Path(__file__).resolve().parents[2]
        workers = [subprocess.Popen([sys.executable, "-c", _WORKER, address], cwd=root, env=os.environ.copy(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = []
        for w in workers:
            out, err = w.communicate(timeout=120)
            assert w.returncode == 0, err[-2000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        server.stop()
        SharedBreakers().reset()
    attempts = sum(r["attempts"] for r in results)
    assert 5 <= attempts <= 5 + len(workers), results
    assert sum(r["circuit_open"] for r in results) == 40 - attempts
