"""Re-checks of current recipients (动态管理): which households are due, and re-checking them with the same stages.

A current recipient is a household to which the department reports an active grant for the application's purpose
(``POST /v1/assistance``). Where the department has reported no grant for it at all, the hub falls back on
eligibility: the household's latest record for the application found it eligible for the programme of the purpose
(screening "yes" or "needs_review"; purposes without a screened programme are then not re-checked). A recipient is
due when its authorization is valid now and the last check is at least the authorization's ``recheck_interval_days``
old.

A re-check is a request of kind ``recheck`` whose parent is the application: it names the same members and
runs under the application's authorizations, so the consent gate decides every fetch again, now (a revoked or
expired authorization stops it). Its id is derived from the application and the pipeline run, so a task that is
retried resumes its re-checks instead of starting new ones.

An incomplete re-check is not a check. A re-check that ended without a record (failed, closed) or whose record has
a source left incomplete or unavailable by an outage (a reason in OUTAGE: the agency unreachable, slow, refusing
5xx, its answer unsigned, miscounted, unreadable or too large, members left unanswered, a batch answer giving a
member's rows under another household's reference) leaves its household
*waiting*: due again after ``backoff(n)`` for its n-th incomplete attempt in a row (the next run, then 1 h, 4 h,
16 h, then every 24 h) until a complete re-check lands, whatever the authorization's interval. What a re-check
cannot fix by asking again is not waiting: consent (a member not authorized, withdrawn), persons the agency does
not know, rows quarantined (staff's to look at). Staff see the waiting households (``waiting_rechecks``).

Nothing stays ``running`` without a living worker: a run holds a lease on the re-checks it works on (owner
host:pid:process start, renewed between stages, HUB_RECHECK_LEASE_S). Every run first looks for re-checks left
received or running by a worker that is gone (on this host: its process no longer exists; elsewhere: its lease
lapsed): those of households this run re-checks are taken over and resumed (their batches already fetched are
kept, nothing is asked twice), the others are closed as failed with a ``recheck.closed`` ledger entry, and so are
waiting for their next run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import func, select, update

from consent import ledger
from consent.authorizations import not_revoked
from connectors.transport import Failure
from core.crypto import keyring
from core.ids import time_prefix
from core.settings import settings
from core.store import (
    AssistanceGrant,
    Authorization,
    FetchBatch,
    HouseholdRecord,
    Notification,
    Request,
    RequestMember,
    aad_member,
    session,
    utcnow,
)
from hub.stages import pipeline  # by module: its stages are looked up at call time (tests stand in for them)
from hub.stages.records import decrypt_content, publish_records
from hub.stages.rows import one_pass
from schemas.vocabulary import PROGRAMME_OF_PURPOSE, REVIEW, YES

log = logging.getLogger(__name__)

RECIPIENT_ANSWERS = (YES, REVIEW)

# the reasons a source is left incomplete or unavailable that asking again may cure (see the module docstring)
OUTAGE = frozenset({f.value for f in Failure if f not in (Failure.REFUSED, Failure.BAD_REQUEST)}
                   | {"MEMBERS_NOT_ANSWERED", "BATCH_REJECTED", "BATCH_MISMATCH"})
BACKOFF_CAP = dt.timedelta(hours=24)
UNFINISHED = ("received", "running")


def backoff(attempts: int) -> dt.timedelta:
    """How long after its ``attempts``-th incomplete re-check in a row a household is due again: at once after the
    first, then 1 h, 4 h, 16 h, and 24 h from the fifth on."""
    if attempts <= 1:
        return dt.timedelta(0)
    return min(BACKOFF_CAP, dt.timedelta(hours=4 ** (attempts - 2)))


@dataclass(frozen=True)
class Waiting:
    """An application whose household waits for a complete re-check (no personal data: pseudonyms and ids)."""

    application_id: str
    household_ref: str | None
    attempts: int  # incomplete re-checks in a row
    since: dt.datetime  # the first of them
    last: dt.datetime  # the latest of them
    next_due: dt.datetime
    reasons: tuple[str, ...]  # why the latest was incomplete (source:REASON, or the request's status)


def _incomplete_rechecks(s) -> dict[str, list[tuple[dt.datetime, str, tuple[str, ...]]]]:
    """Per application: its finished re-checks in order, each (when, "complete" or "incomplete", reasons); column
    reads only (a city's re-checks)."""
    rechecks = {rid: (parent, status, updated) for rid, parent, status, updated in s.execute(
        select(Request.id, Request.parent_id, Request.status, Request.updated_at).where(Request.kind == "recheck"))
        if status not in UNFINISHED}
    latest: dict[tuple[str, str], tuple[str, str | None]] = {}
    ids = list(rechecks)
    for start in range(0, len(ids), 500):
        for request_id, source, status, reason in s.execute(
                select(FetchBatch.request_id, FetchBatch.source, FetchBatch.status, FetchBatch.reason)
                .where(FetchBatch.request_id.in_(ids[start: start + 500]))
                .order_by(FetchBatch.fetched_at, FetchBatch.id)):
            latest[(request_id, source)] = (status, reason)
    outages: dict[str, list[str]] = {}
    for (request_id, source), (status, reason) in latest.items():
        if status in ("incomplete", "unavailable") and reason in OUTAGE:
            outages.setdefault(request_id, []).append(f"{source}:{reason}")
    out: dict[str, list[tuple[dt.datetime, str, tuple[str, ...]]]] = {}
    for rid, (parent, status, updated) in rechecks.items():
        if status == "published" and rid not in outages:
            out.setdefault(parent, []).append((updated, "complete", ()))
        elif status == "refused":  # the gate allowed nobody: consent, not an outage
            continue
        else:
            why = tuple(sorted(outages.get(rid, []))) or (status.upper(),)
            out.setdefault(parent, []).append((updated, "incomplete", why))
    for attempts in out.values():
        attempts.sort()
    return out


def _waiting(s) -> dict[str, tuple[int, dt.datetime, dt.datetime, tuple[str, ...]]]:
    """Per application waiting for a complete re-check: (incomplete attempts in a row, first, last, reasons)."""
    out = {}
    for app_id, attempts in _incomplete_rechecks(s).items():
        run = []
        for when, outcome, why in attempts:
            run = [] if outcome == "complete" else run + [(when, why)]
        if run:
            out[app_id] = (len(run), run[0][0], run[-1][0], run[-1][1])
    return out


def waiting_rechecks(*, now: dt.datetime | None = None) -> list[Waiting]:
    """The applications whose households wait for a complete re-check, the longest waiting first: what staff see
    (console sources page, ``GET /v1/rechecks/waiting``, ``hub reverify``)."""
    with session() as s:
        waiting = _waiting(s)
        households = {rid: ref for rid, ref in s.execute(select(Request.id, Request.household_ref).where(
            Request.id.in_(list(waiting))))} if waiting else {}
    items = [Waiting(app_id, households.get(app_id), n, first, last, last + backoff(n), why)
             for app_id, (n, first, last, why) in waiting.items()]
    return sorted(items, key=lambda w: (w.since, w.application_id))


def due_recipients(*, now: dt.datetime | None = None, limit: int | None = None, every: bool = False) -> list[str]:
    """Ids of the applications whose households are due for a re-check, oldest check first; with ``every``, all
    current recipients whose authorization is valid, however recent their last check (e.g. after the standards
    changed). Reads columns, not whole records, so a city's recipients fit in little memory; a record's content is
    decrypted only when its department never reported a grant. ``now`` is the moment of the selection (a DAG run's
    logical date; by default the clock's)."""
    now = now or utcnow()
    latest: dict[tuple[str, str, str], tuple[int, dt.datetime, str]] = {}
    with session() as s:
        requests = {rid: (parent, department, purpose) for rid, parent, department, purpose in s.execute(
            select(Request.id, Request.parent_id, Request.department, Request.purpose))}
        for record_id, household_ref, recorded_at, request_id in s.execute(
                select(HouseholdRecord.id, HouseholdRecord.household_ref, HouseholdRecord.recorded_at,
                       HouseholdRecord.request_id).order_by(HouseholdRecord.recorded_at)):
            parent, department, purpose = requests[request_id]
            root = parent or request_id
            _, root_department, root_purpose = requests.get(root, requests[request_id])
            latest[(household_ref, root_department, root_purpose)] = (record_id, recorded_at, root)
        auths: dict[str, list[tuple]] = {}
        for request_id, valid_from, valid_until, interval in s.execute(
                select(Authorization.request_id, Authorization.valid_from, Authorization.valid_until,
                       Authorization.recheck_interval_days).where(not_revoked(Authorization.id, now))):
            auths.setdefault(request_id, []).append((valid_from, valid_until, interval))
        waiting = _waiting(s)
        due = []
        for (household_ref, department, purpose), (record_id, recorded_at, root) in latest.items():
            valid = [a for a in auths.get(root, []) if a[0] <= now < a[1]]
            if not valid:
                continue
            interval = dt.timedelta(days=min(a[2] for a in valid))
            if root in waiting:  # an incomplete re-check is not a check: due again after its back-off
                attempts, _, last, _ = waiting[root]
                if now - last < backoff(attempts) and not every:
                    continue
            elif now - recorded_at < interval and not every:
                continue
            granted = active_grant(s, household_ref, department, purpose, now.date())
            if granted is None and purpose in PROGRAMME_OF_PURPOSE:  # no grant ever reported: eligibility decides
                screening = decrypt_content(s.get(HouseholdRecord, record_id))["assessment"]["screening"]
                granted = screening.get(PROGRAMME_OF_PURPOSE[purpose], {}).get("answer") in RECIPIENT_ANSWERS
            if granted:
                due.append((recorded_at, root))
    due.sort()
    return [rid for _, rid in due][:limit]


# -- leases ---------------------------------------------------------------------------------------------------

def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None when there is no such process: with
    the pid it names one process, never a later one that reuses the pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


@lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


def worker_id() -> str:
    """This process as a lease's owner: host:pid:process start."""
    return f"{_host()}:{os.getpid()}:{_started(os.getpid()) or '?'}"


def _gone(owner: str | None, lease_until: dt.datetime | None, updated_at: dt.datetime, now: dt.datetime) -> bool:
    """Whether the worker of an unfinished re-check is gone: on this host, its process no longer exists (or is
    another with the same pid); elsewhere, or unknown, its lease lapsed."""
    if owner:
        host, _, rest = owner.partition(":")
        pid, _, started = rest.partition(":")
        if host == _host() and pid.isdigit():
            return _started(int(pid)) != started
    held = lease_until or updated_at + dt.timedelta(seconds=settings().recheck_lease_s)
    return held <= now


def _lease_values() -> dict:
    return {"lease_owner": worker_id(),
            "lease_until": utcnow() + dt.timedelta(seconds=settings().recheck_lease_s)}


def renew_leases(recheck_ids: list[str]) -> None:
    """This worker holds (again) the leases of ``recheck_ids``, for HUB_RECHECK_LEASE_S from now."""
    values = _lease_values()
    with session() as s:
        for start in range(0, len(recheck_ids), 500):
            s.execute(update(Request).where(Request.id.in_(recheck_ids[start: start + 500]))
                      .values(**values).execution_options(synchronize_session=False))


def unfinished_rechecks():
    """The re-checks still received or running, oldest first: by the index on (kind, status), not a scan of every
    request."""
    return (select(Request.id, Request.parent_id, Request.lease_owner, Request.lease_until, Request.updated_at)
            .where(Request.kind == "recheck", Request.status.in_(UNFINISHED)).order_by(Request.created_at))


def recover(application_ids: list[str]) -> tuple[dict[str, str], set[str], int]:
    """Re-checks left unfinished: (application id -> re-check this run takes over, for applications of
    ``application_ids`` whose re-check's worker is gone; applications of ``application_ids`` a living worker is
    re-checking right now, to leave to it; how many re-checks of gone workers were closed, the others). A re-check
    is taken over or closed only if its lease is still the one read (two runs at once: one takes it)."""
    now = utcnow()
    wanted = set(application_ids)
    adopted: dict[str, str] = {}
    busy: set[str] = set()
    closed = 0
    mine = _lease_values()
    with session() as s:
        unfinished = s.execute(unfinished_rechecks()).all()
        entries = []
        for rid, parent, owner, until, updated in unfinished:
            if owner == mine["lease_owner"]:
                continue  # this very process (a stage called again): its own
            if not _gone(owner, until, updated, now):
                if parent in wanted:
                    busy.add(parent)
                continue
            held = Request.lease_owner.is_(None) if owner is None else Request.lease_owner == owner
            if parent in wanted and parent not in adopted:
                took = s.execute(update(Request).where(Request.id == rid, held).values(**mine)
                                 .execution_options(synchronize_session=False)).rowcount
                if took:
                    adopted[parent] = rid
                    entries.append(("recheck.resumed", {"request_id": rid, "application_id": parent}))
                continue
            took = s.execute(update(Request).where(Request.id == rid, held, Request.status.in_(UNFINISHED))
                             .values(status="failed", lease_owner=None, lease_until=None)
                             .execution_options(synchronize_session=False)).rowcount
            if took:
                closed += 1
                entries.append(("recheck.closed", {"request_id": rid, "application_id": parent,
                                                   "reason": "WORKER_GONE"}))
        ledger.append_many(s, entries)
    if adopted or closed or busy:
        log.info("re-checks left unfinished: %d resumed, %d closed, %d being re-checked by another worker",
                 len(adopted), closed, len(busy))
    return adopted, busy, closed


def release(recheck_ids: list[str]) -> int:
    """The end of this worker's leases on ``recheck_ids``: any of them still unfinished is closed as failed (with
    a ``recheck.closed`` entry), so nothing stays running once its worker is done; returns how many were closed."""
    me = worker_id()
    closed = 0
    with session() as s:
        entries = []
        for start in range(0, len(recheck_ids), 500):
            chunk = recheck_ids[start: start + 500]
            for rid, parent in s.execute(select(Request.id, Request.parent_id).where(
                    Request.id.in_(chunk), Request.lease_owner == me, Request.status.in_(UNFINISHED))).all():
                entries.append(("recheck.closed", {"request_id": rid, "application_id": parent,
                                                   "reason": "NOT_FINISHED"}))
                closed += 1
            s.execute(update(Request).where(Request.id.in_(chunk), Request.lease_owner == me,
                                            Request.status.in_(UNFINISHED))
                      .values(status="failed").execution_options(synchronize_session=False))
            s.execute(update(Request).where(Request.id.in_(chunk), Request.lease_owner == me)
                      .values(lease_owner=None, lease_until=None).execution_options(synchronize_session=False))
        ledger.append_many(s, entries)
    return closed


def _resealed(keys, member: RequestMember, column: str, from_request: str, to_request: str) -> str:
    """A member's encrypted value, sealed again for the same member's row in another request."""
    plain = keys.decrypt(getattr(member, column), aad=aad_member(from_request, column, member.person_ref))
    return keys.encrypt(plain, aad=aad_member(to_request, column, member.person_ref))


def start_recheck(application_id: str, run_id: str) -> str:
    """The re-check request of ``application_id`` for pipeline run ``run_id`` (created once, then found again)."""
    return start_rechecks([application_id], run_id)[0]


def recheck_key(application_id: str, run_id: str) -> str:
    """The key of ``application_id``'s re-check in pipeline run ``run_id`` (``Request.recheck_key``): derived, not
    drawn, so every attempt at it (a retried task, a batch fetched household by household after it could not be
    fetched together) finds the same re-check, and two attempts at once make one (the key is unique)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"hub:recheck:{application_id}:{run_id}").hex[12:]


def start_rechecks(application_ids: list[str], run_id: str, resumed: dict[str, str] | None = None) -> list[str]:
    """``start_recheck`` for many applications in one transaction; ids in the order given. ``resumed``: the
    re-check taken over (``recover``) for some of them, used instead of a new one. This worker holds the lease of
    every one.

    A re-check is found again by its key (``recheck_key``); a new one's id is the time it was made
    (``core.ids.time_prefix``) followed by its key, so the re-checks a batch starts, and their batches, rows and
    runs, sort together at the end of every index keyed by their ids."""
    keys = keyring()
    wanted = {a: recheck_key(a, run_id) for a in application_ids}
    prefix = time_prefix()
    with session() as s:
        found = dict(s.execute(select(Request.recheck_key, Request.id)
                               .where(Request.recheck_key.in_(list(wanted.values())))).all())
        ids = [(resumed or {}).get(a) or found.get(wanted[a]) or prefix + wanted[a] for a in application_ids]
        existing = set(found.values()) | set((resumed or {}).values())  # read just now; a new id is no row's yet
        todo = {a: r for a, r in zip(application_ids, ids) if r not in existing}
        apps = {a.id: a for a in s.scalars(select(Request).where(Request.id.in_(list(todo))))}
        for app_id in todo:
            if app_id not in apps:
                raise LookupError(f"no request {app_id}")
        members: dict[str, list[RequestMember]] = {}
        for m in s.scalars(select(RequestMember).where(RequestMember.request_id.in_(list(todo)))
                           .order_by(RequestMember.id)):
            members.setdefault(m.request_id, []).append(m)
        entries = []
        for app_id, recheck_id in todo.items():
            app = apps[app_id]
            s.add(Request(id=recheck_id, department=app.department, purpose=app.purpose, case_ref=app.case_ref,
                          sources=list(app.sources), status="received", kind="recheck", parent_id=app.id,
                          recheck_key=wanted[app_id], **_lease_values()))
            for m in members.get(app_id, []):
                s.add(RequestMember(request_id=recheck_id, person_ref=m.person_ref, relation=m.relation,
                                    id_number_enc=_resealed(keys, m, "id_number_enc", app.id, recheck_id),
                                    name_enc=_resealed(keys, m, "name_enc", app.id, recheck_id)))
            entries.append(("recheck.started", {"request_id": recheck_id, "application_id": app.id, "run_id": run_id}))
        s.flush()
        ledger.append_many(s, entries)
    renew_leases([i for i in ids if i not in todo.values()])  # found again: a retried task's, or taken over
    return ids


def _fetched_at(request_ids: list[str]) -> dict[str, dt.datetime]:
    """When each request's sources were last fetched (requests without a batch are left out)."""
    with session() as s:
        return dict(s.execute(select(FetchBatch.request_id, func.max(FetchBatch.fetched_at))
                              .where(FetchBatch.request_id.in_(request_ids)).group_by(FetchBatch.request_id)).all())


# The collector's thresholds while a re-check batch runs. A batch makes and keeps hundreds of thousands of objects
# (rows, results, records) for a while, and at Python's default (700 allocations) the collector walked every live
# object about ten times a batch: a sixth of the batch's time, for almost no garbage (measured). Looser for the batch,
# restored after it; nested and concurrent batches share one setting.
BATCH_GC_THRESHOLDS = (50_000, 20, 20)
_gc_lock = threading.Lock()
_gc_depth = 0
_gc_saved: tuple[int, ...] = ()


@contextlib.contextmanager
def batch_gc():
    """The collector at BATCH_GC_THRESHOLDS for the block (at its own again when the last such block ends)."""
    global _gc_depth, _gc_saved
    with _gc_lock:
        if not _gc_depth:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(*BATCH_GC_THRESHOLDS)
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if not _gc_depth:
                gc.set_threshold(*_gc_saved)


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim`` (None where the C library has none: another libc, another system)."""
    try:
        import ctypes

        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def give_back_memory() -> bool:
    """After a batch: collect its cycles, then hand the heap's free pages back to the system (glibc's
    ``malloc_trim``); whether there was a ``malloc_trim`` to call.

    A re-check batch allocates and frees some hundreds of MB across a dozen fetch threads; glibc keeps what was freed
    in its per-thread arenas, and a worker's resident set grew batch after batch although the objects it held did
    not (measured, 100,000 persons, one worker, batches 4 to 18: +91 MB without this, +3 MB with it; the trim took
    2 to 16 ms a batch, the collection was not timed apart)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def recheck_batch(application_ids: list[str], *, run_id: str, as_of: dt.datetime | None = None) -> dict:
    """Re-check each application's household through every stage. The households are fetched together
    (``hub.stages.pipeline.fetch_many``: the gate still decides per member, the households' persons are asked in
    batch exchanges of up to each agency's batch limit, each person under their own authorization's reference, the
    answers split back per household, and the store's work is done in bulk); the batches of all households are
    validated together, one GX run per source, and checked across sources together; then each is published. A
    household that fails is counted and the others go on: if the batch cannot be fetched together, each household
    is fetched on its own (the task log names the re-check, never a person).

    ``as_of`` is the moment the new records describe (the DAG passes its run's logical date); without it, each
    household as its agencies last answered (its latest fetch), so a retried re-check publishes the same record and
    no record's time is read from the clock."""
    out = {"rechecked": 0, "published": 0, "changed": 0, "failed": 0, "refused": 0, "incomplete": 0, "resumed": 0,
           "closed": 0, "busy": 0}
    resumed, busy, out["closed"] = recover(application_ids)
    out["resumed"], out["busy"] = len(resumed), len(busy)
    application_ids = [a for a in application_ids if a not in busy]  # a living worker is on it: not twice
    held: list[str] = []  # the re-checks this run holds: released at the end, whatever happens
    try:
        with one_pass(), batch_gc():  # every row decrypted and parsed at most once for the batch, across the stages
            _recheck(application_ids, run_id, as_of, resumed, out, held)
    finally:  # what this run could not finish is closed, not left running (a killed run's, the next run's to find)
        release(held)
        give_back_memory()
    log.info("re-checked %d households: %s", len(application_ids), out)
    return out


def _recheck(application_ids: list[str], run_id: str, as_of: dt.datetime | None, resumed: dict[str, str],
             out: dict, held: list[str]) -> None:
    """``recheck_batch``'s stages, counting into ``out``; every re-check started goes into ``held``."""
    try:
        ready = start_rechecks(application_ids, run_id, resumed)
        held += ready
        pending = pipeline.fetch_many(ready, exchange=True)
    except Exception as exc:  # one household's failure must not stop the others: fetch them one by one
        log.warning("re-check batch could not be fetched together (%s); household by household",
                    exc.__class__.__name__)
        ready, pending = [], []
        for app_id in application_ids:
            recheck_id = None
            try:
                recheck_id = start_rechecks([app_id], run_id, resumed)[0]
                held.append(recheck_id)
                pending += pipeline.fetch_missing(recheck_id)
            except Exception as exc:
                log.warning("re-check of %s failed while fetching: %s", app_id, exc.__class__.__name__)
                out["failed"] += 1
                continue
            ready.append(recheck_id)
    renew_leases(ready)
    pipeline.validate_batches(pending, run_id=run_id)
    pipeline.cross_check_many(ready, run_id=run_id)  # one GX run for all of them
    renew_leases(ready)
    fetched_at = {} if as_of is not None else _fetched_at(ready)
    failed: dict[str, str] = {}  # every household published on its own as before, the records stored together
    published = publish_records([(r, as_of or fetched_at[r]) for r in ready], failed)
    for recheck_id, error in failed.items():
        log.warning("re-check %s failed: %s", recheck_id, error)
    out["failed"] += len(failed)
    out["rechecked"] += len(published)
    with session() as s:
        statuses = dict(s.execute(select(Request.id, Request.status).where(
            Request.id.in_([r for r, rid in published.items() if rid is None]))).all())
        records = [rid for rid in published.values() if rid is not None]
        changed = {rid for rid, kind, payload in s.execute(select(
            Notification.record_id, Notification.kind, Notification.payload).where(Notification.record_id.in_(records)))
            if kind == "record.changed" and payload.get("changed")}
        incomplete = {rid for rid, completeness in s.execute(select(HouseholdRecord.id, HouseholdRecord.completeness)
                                                             .where(HouseholdRecord.id.in_(records)))
                      if any(v in ("incomplete", "unavailable") for v in completeness.values())}
    for recheck_id, record_id in published.items():
        if record_id is None:
            out["refused" if statuses.get(recheck_id) == "refused" else "failed"] += 1
            continue
        out["published"] += 1
        out["changed"] += record_id in changed
        out["incomplete"] += record_id in incomplete


def active_grant(s, household_ref: str, department: str, programme: str, on: dt.date) -> bool | None:
    """Whether the department reports an active grant of ``programme`` on ``on``; None when it never reported one."""
    grants = s.scalars(select(AssistanceGrant).where(AssistanceGrant.household_ref == household_ref,
                                                     AssistanceGrant.department == department,
                                                     AssistanceGrant.programme == programme)).all()
    if not grants:
        return None
    return any(g.granted_from <= on and (g.granted_until is None or on <= g.granted_until) for g in grants)
