"""Source suites validated side by side, in warm processes of their own.

GX runs one suite at a time in a process (its context is not thread-safe) and holds the interpreter while it does, so
a household's eleven source suites, validated one after another, use one core however many the machine has. A
long-lived process that verifies (the API's own worker, hub.services.worker) starts a ``Pool`` of spawned processes,
each of which imports GX and plans every suite once (schemas.suite keeps the plans) before it takes any work;
``validate_all`` then hands each suite's rows to the next free process and collects the outcomes, largest first.

Nothing depends on the pool being there: without one (a one-shot `hub verify --sync`, an Airflow task, tests), before
its processes are warm, or for a single suite, ``validate_all`` validates in this process, one suite after another,
and gets the same outcomes. A process of the pool that dies (killed, out of memory) loses nothing: the call that met
it validates everything it asked for here, and the pool is made afresh for the next call.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from schemas.contracts import SPECS
from schemas.suite import SUITE_MODULES, Outcome, validate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    source: str
    rows: list[dict]
    run_name: str | None = None
    batch_keys: list[int] | None = None


def _run(job: Job) -> Outcome:
    return validate(job.source, job.rows, run_name=job.run_name, batch_keys=job.batch_keys)


def plan_every_suite() -> None:
    """GX imported and every suite planned in this process (a run on one empty row each): its first real batch then
    costs what every later one does, and so does that of a process forked from it (hub.airflow.warm)."""
    for source in dict.fromkeys([*SPECS, *SUITE_MODULES]):
        validate(source, [{}])


def _warm(ready) -> None:
    """A pool process's start: Ctrl-C is its parent's to handle; every suite planned; then its pid on ``ready``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    plan_every_suite()
    ready.put(os.getpid())


def _nothing() -> None:
    return None


class Pool:
    """``processes`` spawned processes validating suites (schemas.parallel)."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a validation pool needs at least one process")
        self.processes = processes
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._ready = None  # the queue on which each process of the executor says it is warm
        self._warm: set[int] = set()

    def start(self) -> Pool:
        with self._lock:
            if self._executor is None:
                context = multiprocessing.get_context("spawn")
                self._ready, self._warm = context.Queue(), set()
                self._executor = ProcessPoolExecutor(self.processes, mp_context=context, initializer=_warm,
                                                     initargs=(self._ready,))
                for _ in range(self.processes):  # each task spawns one more process (none is idle yet)
                    self._executor.submit(_nothing)
        return self

    def _heard(self, timeout: float | None = None) -> set[int]:
        """The processes of the current executor that said they are warm (waiting up to ``timeout`` for one more)."""
        ready = self._ready
        try:
            while ready is not None and len(self._warm) < self.processes:
                self._warm.add(ready.get(timeout=timeout) if timeout else ready.get_nowait())
                timeout = None
        except (queue.Empty, OSError, ValueError):
            pass
        return set(self._warm)

    def ready(self) -> bool:
        """Whether a process of the pool is warm (a task given now does not wait for GX to load)."""
        return self._executor is not None and bool(self._heard())

    def wait(self, timeout: float = 120.0) -> bool:
        """Wait until every process of the pool is warm; whether they all are."""
        deadline = time.monotonic() + timeout
        while len(self._heard(timeout=0.2)) < self.processes:
            if time.monotonic() > deadline or self._executor is None:
                return False
        return True

    def pids(self) -> set[int]:
        """The processes that are warm (for operators and tests)."""
        return self._heard()

    def validate_all(self, jobs: list[Job]) -> list[Outcome]:
        """Each job's outcome, in the order given; the pool's processes validate them side by side."""
        executor = self._executor
        if executor is None or len(jobs) < 2 or not self.ready():
            return [_run(job) for job in jobs]
        order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i].rows))  # the largest first: the last to end
        try:
            futures = {i: executor.submit(_run, jobs[i]) for i in order}
            return [futures[i].result() for i in range(len(jobs))]
        except BrokenProcessPool:
            log.warning("a validation process ended unexpectedly; validating in this process, the pool is restarted")
            self._restart(executor)
            return [_run(job) for job in jobs]

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)
        self.start()

    def close(self) -> None:
        with self._lock:
            executor, self._executor, self._ready = self._executor, None, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


_pool: Pool | None = None
_users = 0
_pool_lock = threading.Lock()


def start(processes: int) -> Pool | None:
    """This process's pool of ``processes`` (none for 0), started once however many callers ask; ``stop`` as often."""
    global _pool, _users
    if processes < 1:
        return None
    with _pool_lock:
        _users += 1
        if _pool is None:
            _pool = Pool(processes).start()
        return _pool


def stop() -> None:
    global _pool, _users
    with _pool_lock:
        _users = max(0, _users - 1)
        pool = _pool if _users == 0 else None
        if pool is not None:
            _pool = None
    if pool is not None:
        pool.close()


def validate_all(jobs: list[Job]) -> list[Outcome]:
    """Each job's outcome, in the order given: in this process's pool when it has one, else here."""
    pool = _pool
    if pool is None:
        return [_run(job) for job in jobs]
    return pool.validate_all(jobs)
