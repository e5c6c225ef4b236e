"""Suites validated side by side in warm processes (schemas.parallel): the same outcomes as in this process, the work
done in the pool's processes once they are warm (here before), and a pool process that dies loses nothing. One pool
for the module: each start spawns processes that load GX."""

from __future__ import annotations

import copy
import os
import signal
import time

import pytest

from schemas import parallel
from schemas.parallel import Job, Pool
from schemas.suite import validate
from tests.schemas.test_rules import SOURCES, _faulty, clean


def _jobs() -> list[Job]:
    """Every economic source's faulty rows (two batches each, so uniqueness is per batch) and one clean source."""
    jobs = []
    for source in SOURCES:
        rows = _faulty(source)
        jobs.append(Job(source, rows, "run-1", [i % 2 for i in range(len(rows))]))
    jobs.append(Job("tax", clean("tax")[:5], "run-1"))
    return jobs


def _strip(docs: dict) -> dict:
    """Data Docs without what differs from process to process: the run's time, and the id GX gives each expectation
    when a process builds its suite."""
    out = {k: v for k, v in docs.items() if k != "meta"}
    out["results"] = [{**r, "expectation_config": {k: v for k, v in r["expectation_config"].items() if k != "id"}}
                      for r in docs["results"]]
    return out


def _same(a, b) -> None:
    assert (a.suite, a.success, a.rows, a.failures, a.results, a.must_pass_failed, a.must_pass_checks) == \
        (b.suite, b.success, b.rows, b.failures, b.results, b.must_pass_failed, b.must_pass_checks)
    assert _strip(a.docs) == _strip(b.docs)
    assert a.docs["meta"]["run_id"]["run_name"] == b.docs["meta"]["run_id"]["run_name"]


@pytest.fixture(scope="module")
def pool():
    pool = Pool(2).start()
    assert pool.wait(180), "the pool's processes did not warm up"
    yield pool
    pool.close()


def test_the_pool_finds_what_this_process_finds(pool, monkeypatch):
    jobs = _jobs()
    here = [validate(j.source, copy.deepcopy(j.rows), run_name=j.run_name, batch_keys=j.batch_keys) for j in jobs]
    assert any(not o.success for o in here) and any(o.success for o in here)  # both kinds compared

    def not_here(*args, **kwargs):
        raise AssertionError("validated in the calling process, not in the pool")

    monkeypatch.setattr(parallel, "validate", not_here)  # the pool's processes have their own, untouched
    assert len(pool.pids()) == 2 and os.getpid() not in pool.pids()
    for a, b in zip(pool.validate_all(jobs), here):
        _same(a, b)


def test_a_pool_process_killed_loses_nothing_and_the_pool_comes_back(pool):
    jobs = _jobs()
    expected = [validate(j.source, copy.deepcopy(j.rows), run_name=j.run_name, batch_keys=j.batch_keys) for j in jobs]
    victim = sorted(pool.pids())[0]
    os.kill(victim, signal.SIGKILL)
    time.sleep(0.5)  # the executor notices the death: the next call meets a broken pool
    for a, b in zip(pool.validate_all(jobs), expected):  # validated here instead, every job, in order
        _same(a, b)
    assert pool.wait(180) and victim not in pool.pids() and len(pool.pids()) == 2  # a new pool, warm
    for a, b in zip(pool.validate_all(jobs), expected):
        _same(a, b)


def test_a_pool_not_warm_yet_or_one_suite_validates_here(monkeypatch):
    jobs = _jobs()[:3]
    cold = Pool(1)  # never started: as good as one whose processes still load GX
    assert not cold.ready()
    for a, j in zip(cold.validate_all(jobs), jobs):
        _same(a, validate(j.source, copy.deepcopy(j.rows), run_name=j.run_name, batch_keys=j.batch_keys))
    calls = []
    monkeypatch.setattr(parallel, "_run", lambda job: calls.append(job.source) or validate(job.source, job.rows))
    cold.validate_all(jobs[:1])
    assert calls == [jobs[0].source]


def test_the_process_pool_is_shared_and_ends_with_its_last_user(monkeypatch):
    made = []

    class Counting(Pool):
        def start(self):
            made.append(self)
            return self

        def close(self):
            made.remove(self)

    monkeypatch.setattr(parallel, "Pool", Counting)
    assert parallel.start(0) is None and not made  # 0: no pool, validated in the process itself
    first, second = parallel.start(2), parallel.start(2)
    assert first is second and made == [first] and parallel._pool is first
    parallel.stop()
    assert made == [first]  # one user left
    parallel.stop()
    assert made == [] and parallel._pool is None
    with pytest.raises(ValueError):
        Pool(0)
