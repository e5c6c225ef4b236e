"""The ledger: an append-only log of every consent decision, fetch, validation, publication and read.

Each event is stored with its RFC 6962 leaf hash, SHA-256(0x00 || canonical JSON of the entry), so the
Merkle tree and signed checkpoints can be built over it. Payloads carry pseudonyms and hashes only: never
a name, an ID number or a fetched value.

Two ways in: ``append``/``append_many`` inside the transaction of the work they record (it commits or rolls back
with it), and ``append_durable`` for what a server does while answering (a department's read, an auditor's): the
entry is handed to the process's one ledger writer, which commits every entry queued meanwhile in one transaction
(group commit: one commit per group instead of one per read, on SQLite and PostgreSQL alike), and the caller
returns only once its own entry is durable, or gets ``LedgerUnavailable`` and answers nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
import queue
import re
import threading
import time
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout

from sqlalchemy.orm import Session

from core.crypto import canonical_json
from core.settings import settings
from core.store import LedgerEvent, engine, utcnow
from schemas.codes import is_valid_id

# A resident ID number anywhere in a payload is a bug: refuse to write it.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z_])\d{17}[\dXx](?![0-9A-Za-z_])")


class PersonalDataInLedger(ValueError):
    """A payload looked like it held personal data; nothing was written."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def entry_bytes(kind: str, recorded_at: dt.datetime, payload: dict) -> bytes:
    return canonical_json({"kind": kind, "at": recorded_at.isoformat(), "payload": payload})


# Every ASCII digit made "0" and every other byte a space: an identity number is 17 ASCII digits in a row and its
# check character (schemas.codes.is_valid_id), so an entry without "0" * 17 in its translation holds none, and the
# regex need not search it. No byte of a character beyond ASCII is an ASCII digit in UTF-8.
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))


def _may_hold_id(data: bytes) -> bool:
    """Whether ``data`` has 17 ASCII digits in a row: a tenth of the regex's time on a typical entry, and a
    re-check writes some fifty entries a household."""
    return b"0" * 17 in data.translate(_DIGITS_AS_ZERO)


def _checked_entry(kind: str, at: dt.datetime, payload: dict) -> bytes:
    data = entry_bytes(kind, at, payload)
    if _may_hold_id(data) and any(is_valid_id(m) for m in _ID_NUMBER.findall(data.decode("utf-8"))):
        raise PersonalDataInLedger(f"ledger payload of kind {kind!r} contains an identity number")
    return data


def append(s: Session, kind: str, payload: dict, *, at: dt.datetime | None = None) -> LedgerEvent:
    """Append one event inside the caller's transaction (so it commits or rolls back with the work)."""
    at = _second(at)
    event = LedgerEvent(**_row(kind, payload, at))
    s.add(event)
    s.flush()
    return event


def _second(at: dt.datetime | None) -> dt.datetime:
    return (at or utcnow()).astimezone(dt.timezone.utc).replace(microsecond=0)


def _row(kind: str, payload: dict, at: dt.datetime) -> dict:
    """An event's row, checked (PersonalDataInLedger) and hashed."""
    data = _checked_entry(kind, at, payload)
    return {"kind": kind, "recorded_at": at, "payload": payload, "leaf_sha256": leaf_hash(data).hex()}


def append_many(s: Session, entries: list[tuple[str, dict]], *, at: dt.datetime | None = None) -> int:
    """Append a batch of events in one statement (same checks as ``append``); returns how many."""
    at = _second(at)
    rows = [_row(kind, payload, at) for kind, payload in entries]
    if rows:
        s.execute(LedgerEvent.__table__.insert(), rows)
    return len(rows)


# -- group commit: the entries a server writes while answering -------------------------------------------------
log = logging.getLogger(__name__)


class LedgerUnavailable(RuntimeError):
    """The entry could not be made durable (the store refused the write, or did not answer in time): whatever it
    would have recorded must not be answered. The text names the failure's class only, never the entry."""


class GroupWriter:
    """One thread that writes the entries handed to it: it takes every entry queued, waits up to ``group_s`` for
    more (or until ``max_group`` are queued), commits them in one transaction and tells each waiter its entry is
    durable, or that it is not (the whole group failed: none of it was written). An entry still queued when the
    process dies was never answered: its waiter is gone with it."""

    def __init__(self, url: str, *, group_s: float, max_group: int = 512):
        self.url, self.group_s, self.max_group = url, group_s, max_group
        self.queue: queue.SimpleQueue[tuple[dict, Future]] = queue.SimpleQueue()
        self.groups = 0  # committed groups (for tests and benchmarks)
        self.thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self.thread.start()

    def submit(self, row: dict) -> Future:
        done: Future = Future()
        self.queue.put((row, done))
        return done

    def _take(self) -> list[tuple[dict, Future]]:
        group = [self.queue.get()]
        deadline = time.monotonic() + self.group_s
        while len(group) < self.max_group:
            try:
                group.append(self.queue.get_nowait())
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                group.append(self.queue.get(timeout=left))
            except queue.Empty:
                break
        return group

    def _run(self) -> None:
        while True:
            group = self._take()
            try:
                with engine(self.url).begin() as conn:  # Core: no ORM session to set up per group
                    _insert(conn, [row for row, _ in group])
            except Exception as exc:  # noqa: BLE001 - every waiter hears of it; the thread goes on with the next group
                log.warning("ledger writer: a group of %d entries was not written (%s)", len(group),
                            type(exc).__name__)
                failure = LedgerUnavailable(f"the ledger could not be written ({type(exc).__name__})")
                for _, done in group:
                    _settle(done, failure)
            else:
                self.groups += 1
                for _, done in group:
                    _settle(done, None)


_COPY = "COPY ledger_events (kind, recorded_at, payload, leaf_sha256) FROM STDIN"


def _insert(conn, rows: list[dict]) -> None:
    """A group's rows in the caller's transaction. On PostgreSQL with COPY, through the driver: a third of the CPU
    of one INSERT per row, and the writer shares the interpreter with every read it serves; the columns as the
    store's types write them (UTC without a zone, the payload as JSON text). Elsewhere one executemany."""
    if conn.dialect.name != "postgresql":
        conn.execute(LedgerEvent.__table__.insert(), rows)
        return
    import psycopg  # the PostgreSQL driver, present wherever the store is PostgreSQL

    try:
        with conn.connection.driver_connection.cursor() as cur, cur.copy(_COPY) as copy:
            for r in rows:
                copy.write_row((r["kind"], r["recorded_at"].astimezone(dt.timezone.utc).replace(tzinfo=None),
                                json.dumps(r["payload"]), r["leaf_sha256"]))
    except psycopg.OperationalError:
        conn.invalidate()  # SQLAlchemy did not see it fail: a connection that broke is not handed out again
        raise


def _settle(done: Future, failure: Exception | None) -> None:
    """Tell a waiter how its entry went; a waiter that gave up meanwhile (its future cancelled) hears nothing."""
    try:
        if failure is None:
            done.set_result(None)
        else:
            done.set_exception(failure)
    except InvalidStateError:
        pass


_writers: dict[tuple[int, str], GroupWriter] = {}
_writers_lock = threading.Lock()


def writer(url: str | None = None) -> GroupWriter:
    """This process's writer for the store at ``url`` (default: HUB_DATABASE_URL); a forked child makes its own."""
    cfg = settings()
    key = (os.getpid(), url or cfg.database_url)
    found = _writers.get(key)
    if found is None:
        with _writers_lock:
            found = _writers.get(key)
            if found is None:
                found = _writers[key] = GroupWriter(key[1], group_s=cfg.ledger_group_s)
    return found


def append_durable(kind: str, payload: dict, *, at: dt.datetime | None = None, url: str | None = None) -> None:
    """Append one event through the process's group commit and return once it is durable; LedgerUnavailable when
    it is not within HUB_LEDGER_WAIT_S (the caller answers nothing it would have recorded). PersonalDataInLedger
    is raised here, before anything is queued."""
    row = _row(kind, payload, _second(at))
    try:
        writer(url).submit(row).result(timeout=settings().ledger_wait_s)
    except FutureTimeout:
        raise LedgerUnavailable("the ledger did not confirm the entry in time") from None


async def append_durable_async(kind: str, payload: dict, *, at: dt.datetime | None = None,
                               url: str | None = None) -> None:
    """``append_durable`` for a read served on the event loop: awaits the group commit instead of holding a thread.
    A read that is cancelled meanwhile (its client left) leaves its entry to be written all the same."""
    row = _row(kind, payload, _second(at))
    done = asyncio.wrap_future(writer(url).submit(row))
    try:  # shielded: a timeout or a cancelled read must not cancel the entry the writer may be committing
        await asyncio.wait_for(asyncio.shield(done), timeout=settings().ledger_wait_s)
    except TimeoutError:
        raise LedgerUnavailable("the ledger did not confirm the entry in time") from None
