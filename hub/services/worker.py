"""The hub's own worker: without a scheduler (no HUB_AIRFLOW_URL), `hub api` verifies the requests it receives
itself, with the same stage functions as ``hub verify --sync`` (hub.stages.pipeline.run_inline), so a one-machine
office, ``make demo-sync`` and the tests work end to end. HUB_INLINE_WORKER=0 turns it off (requests then wait for
`hub verify`).

A request is claimed in the store, once, whoever else is looking: the claim is one conditional UPDATE of the
request from ``received`` to ``running`` with this worker as the lease's owner (``lease_owner``, ``lease_until``,
the columns re-checks lease with), so of two API processes, or two workers of one, exactly one gets it. While its
run goes on the worker renews the lease (every LEASE_S / 5). A request whose worker is gone (on this host: its
process no longer exists; elsewhere: its lease lapsed) is taken over by the next worker that looks, with the same
conditional UPDATE on the lease it read; the stages are idempotent, so the run resumes without asking any agency
twice for a batch already stored. A run that raises ends the request ``failed`` with a ``publish.failed`` entry
naming the error's class (never its text: it may hold data), which the request page explains.

Each claim is a ``verification.triggered`` ledger entry, as Airflow's triggering is (``driver: worker``). Logs
name requests by id only.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import socket
import threading
import uuid
from collections import deque
from dataclasses import dataclass

from sqlalchemy import select, update

from consent import ledger
from core.settings import settings
from core.store import Request, session, utcnow
from hub.stages import pipeline  # by module: tests stand in for its stages
from schemas import parallel

log = logging.getLogger(__name__)

LEASE_S = 300.0  # a claim holds this long without renewal; renewed every LEASE_S / RENEWALS while the run goes on
RENEWALS = 5
POLL_S = 2.0  # how often an idle worker looks for requests it was not told about (submitted elsewhere, left over)
# a request received elsewhere is left this long to whoever made it, who may be running it already (`hub request
# create` then `hub verify --sync`, which leaves it received while it runs); one handed to this process is taken at once
SETTLE_S = 10.0
WORKER_ERROR = "WORKER_ERROR"  # publish.failed's reason when the worker's run raised

_fresh: deque[str] = deque(maxlen=1000)  # requests this process received, looked at first (``wake``)
_wakeup = threading.Condition()
_serial = itertools.count(1)
_running: set[str] = set()  # owners of this process's workers whose thread runs


def enabled() -> bool:
    """Whether `hub api` runs a worker: HUB_INLINE_WORKER on and no scheduler configured."""
    cfg = settings()
    return cfg.inline_worker and not cfg.airflow_url


def wake(request_id: str | None = None) -> None:
    """Tell this process's workers that ``request_id`` was received: it is looked at before the others."""
    with _wakeup:
        if request_id and _running:
            _fresh.append(request_id)
        _wakeup.notify_all()


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), None when there is none: with the pid, one process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _gone(owner: str, lease_until: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether the worker holding a claim is gone: its lease lapsed, or (same host) its process no longer exists."""
    if lease_until is None or lease_until <= now:
        return True
    host, pid, started = (owner.split(":") + ["", "", ""])[:3]
    return host == socket.gethostname() and pid.isdigit() and _process_start(int(pid)) != started


@dataclass(frozen=True)
class Claim:
    request_id: str
    owner: str
    taken_over: bool  # from a worker that is gone


@dataclass(frozen=True)
class Outcome:
    request_id: str
    status: str  # published | refused | failed
    record_id: int | None


class Worker:
    """One worker: claims requests one at a time and runs each to its end. ``owner`` names it in the leases
    (host:pid:process start:serial, so that two workers of one process are two owners)."""

    def __init__(self) -> None:
        self.owner = (f"{socket.gethostname()}:{os.getpid()}:{_process_start(os.getpid()) or '?'}:"
                      f"{next(_serial)}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: parallel.Pool | None = None

    # -- claiming ---------------------------------------------------------------------------------------------
    def _lease(self) -> dict:
        return {"lease_owner": self.owner, "lease_until": utcnow() + dt.timedelta(seconds=LEASE_S)}

    def claim(self, request_id: str | None = None, *, settled_s: float = 0.0) -> Claim | None:
        """Claim ``request_id`` if it is still to run, else (None given) the oldest received application (received
        at least ``settled_s`` ago), else one whose worker is gone; None when there is nothing to claim. Exactly one
        of several workers gets a request."""
        now = utcnow()
        with session() as s:
            app = (Request.kind == "application")
            if request_id is not None:
                candidates = [request_id]
            else:
                candidates = list(s.scalars(select(Request.id).where(
                    app, Request.status == "received", Request.created_at <= now - dt.timedelta(seconds=settled_s))
                    .order_by(Request.created_at, Request.id).limit(20)))
            for rid in candidates:
                took = s.execute(update(Request).where(Request.id == rid, app, Request.status == "received")
                                 .values(status="running", **self._lease())
                                 .execution_options(synchronize_session=False)).rowcount
                if took:
                    return self._claimed(s, rid, taken_over=False)
            held = s.execute(select(Request.id, Request.lease_owner, Request.lease_until)
                             .where(app, Request.status == "running", Request.lease_owner.is_not(None),
                                    *([Request.id == request_id] if request_id is not None else []))
                             .order_by(Request.updated_at)).all()
            for rid, owner, until in held:
                if owner == self.owner or not _gone(owner, until, now):
                    continue
                took = s.execute(update(Request).where(Request.id == rid, Request.status == "running",
                                                       Request.lease_owner == owner)
                                 .values(**self._lease()).execution_options(synchronize_session=False)).rowcount
                if took:
                    return self._claimed(s, rid, taken_over=True)
        return None

    def _claimed(self, s, request_id: str, *, taken_over: bool) -> Claim:
        ledger.append(s, "verification.triggered", {"request_id": request_id, "driver": "worker",
                                                     "run_id": f"worker:{uuid.uuid4().hex}",
                                                     **({"taken_over": True} if taken_over else {})})
        log.info("worker %s: verifying request %s%s", self.owner, request_id, " (taken over)" if taken_over else "")
        return Claim(request_id, self.owner, taken_over)

    def holder(self, request_id: str) -> str | None:
        """The other worker running ``request_id`` now (its lease live, its process there), or None."""
        now = utcnow()
        with session() as s:
            row = s.execute(select(Request.status, Request.lease_owner, Request.lease_until)
                            .where(Request.id == request_id)).first()
        if row is None or row.status != "running" or not row.lease_owner or row.lease_owner == self.owner:
            return None
        return None if _gone(row.lease_owner, row.lease_until, now) else row.lease_owner

    def _renew(self, request_id: str) -> bool:
        with session() as s:
            return bool(s.execute(update(Request).where(Request.id == request_id, Request.lease_owner == self.owner)
                                  .values(lease_until=utcnow() + dt.timedelta(seconds=LEASE_S))
                                  .execution_options(synchronize_session=False)).rowcount)

    # -- running ----------------------------------------------------------------------------------------------
    def run(self, claim: Claim) -> Outcome:
        """Every stage of the claimed request, in this thread (the lease renewed meanwhile); its end as stored."""
        rid = claim.request_id
        done = threading.Event()

        def renew() -> None:
            while not done.wait(LEASE_S / RENEWALS):
                try:
                    if not self._renew(rid):
                        return  # taken over: the other worker's now (the stages are idempotent)
                except Exception:  # a renewal missed is retried at the next tick
                    log.warning("worker %s: could not renew the lease of request %s", self.owner, rid)

        renewer = threading.Thread(target=renew, name=f"hub-worker-lease-{rid[:8]}", daemon=True)
        renewer.start()
        record_id, error = None, None
        try:
            record_id = pipeline.run_inline(rid).record_id
        except Exception as exc:  # the run's end is stored below; the text of exc may hold data: its class only
            error = exc.__class__.__name__
            log.warning("worker %s: verification of request %s failed: %s", self.owner, rid, error)
        finally:
            done.set()
            renewer.join(timeout=5)
        return Outcome(rid, self._release(rid, error), record_id)

    def release(self, request_id: str, error: str | None = None) -> str:
        """Give up this worker's claim on ``request_id`` after running it elsewhere (``hub verify --sync``): as at the
        end of ``run``. Returns the request's status."""
        return self._release(request_id, error)

    def _release(self, request_id: str, error: str | None) -> str:
        """The end of this worker's claim: a request the run left unfinished (it raised, or stopped short) is
        ``failed`` with a ``publish.failed`` entry; the lease is given up. Returns the request's status."""
        with session() as s:
            req = s.get(Request, request_id)
            if req is None:
                return "failed"
            if req.lease_owner == self.owner and req.status in ("received", "running"):
                req.status = "failed"
                ledger.append(s, "publish.failed", {"request_id": request_id, "reason": WORKER_ERROR,
                                                    "error": error or "NotFinished"})
            if req.lease_owner == self.owner:
                req.lease_owner, req.lease_until = None, None
            return req.status

    def run_once(self, request_id: str | None = None, *, settled_s: float = 0.0) -> Outcome | None:
        """Claim one request (``request_id``, or any) and run it; None when there was nothing to claim."""
        claim = self.claim(request_id, settled_s=settled_s)
        return self.run(claim) if claim is not None else None

    def drain(self) -> list[Outcome]:
        """Run requests until none is left to claim (``hub demo --sync``, tests)."""
        out = []
        while (outcome := self.run_once()) is not None:
            out.append(outcome)
        return out

    # -- the thread -------------------------------------------------------------------------------------------
    def _next(self) -> Outcome | None:
        while True:  # the requests this process received first, newest last
            with _wakeup:
                fresh = _fresh.popleft() if _fresh else None
            if fresh is None:
                return self.run_once(settled_s=SETTLE_S)
            if (outcome := self.run_once(fresh)) is not None:
                return outcome

    def loop(self) -> None:
        """Claim and run until stopped; between requests, wait to be woken (``wake``) or POLL_S."""
        while not self._stop.is_set():
            try:
                outcome = self._next()
            except Exception as exc:  # the store unreachable, say: try again at the next poll
                log.warning("worker %s: could not claim a request: %s", self.owner, exc.__class__.__name__)
                outcome = None
            if outcome is None:
                with _wakeup:
                    if not _fresh and not self._stop.is_set():
                        _wakeup.wait(POLL_S)

    def start(self) -> Worker:
        # the sources of a request validated side by side in warm processes (schemas.parallel), once they are warm
        self._pool = parallel.start(settings().validation_processes)
        self._thread = threading.Thread(target=self.loop, name="hub-worker", daemon=True)
        with _wakeup:
            _running.add(self.owner)
        self._thread.start()
        log.info("worker %s started: this API process verifies the requests it receives (no scheduler)", self.owner)
        return self

    def stop(self, timeout: float = 10) -> None:
        """Stop after the run in progress (waiting up to ``timeout``; a run still going then is left to its lease)."""
        self._stop.set()
        with _wakeup:
            _running.discard(self.owner)
            _wakeup.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if self._pool is not None:
            self._pool = None
            parallel.stop()
