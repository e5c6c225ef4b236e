"""Group commit: the entries a server writes while answering are committed together by one writer per process, and
each caller returns only once its own entry is durable; a store that refuses the write or does not answer fails
every waiter of that group with LedgerUnavailable, and the next group is written once the fault ends."""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select, text

from consent import ledger
from core.settings import settings
from core.store import LedgerEvent, engine, session


def _count(kind: str) -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(LedgerEvent).where(LedgerEvent.kind == kind))


def test_entries_made_at_once_are_committed_in_groups_each_durable_when_its_call_returns(database, monkeypatch):
    monkeypatch.setenv("HUB_LEDGER_GROUP_MS", "20")
    monkeypatch.setattr(ledger, "_writers", {})  # a writer made under this test's settings
    kind = f"test.group.{uuid.uuid4().hex[:8]}"
    n, seen, errors = 48, [], []
    start = threading.Barrier(n)

    def read(i: int) -> None:
        start.wait()
        try:
            ledger.append_durable(kind, {"reader": i})
            with session() as s:  # durable: another connection sees it the moment the call returns
                seen.append(s.scalar(select(func.count()).select_from(LedgerEvent).where(
                    LedgerEvent.kind == kind, LedgerEvent.payload["reader"].as_integer() == i)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and seen == [1] * n
    assert _count(kind) == n
    groups = ledger.writer().groups
    assert 1 <= groups < n, f"{n} entries in {groups} commits: no group was formed"
    with session() as s:  # each entry hashed as append() hashes it
        for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == kind)):
            assert e.leaf_sha256 == ledger.leaf_hash(ledger.entry_bytes(e.kind, e.recorded_at, e.payload)).hex()


def test_an_identity_number_is_refused_before_anything_is_queued(database):
    with pytest.raises(ledger.PersonalDataInLedger) as info:
        ledger.append_durable("test.group.leak", {"who": "11010519491231002X"})
    assert "11010519491231002X" not in str(info.value)
    assert _count("test.group.leak") == 0


def _full_disk(url: str):
    """Every new connection to the SQLite file ``url`` may not grow it (PRAGMA max_page_count at its size now): a
    disk that is full. Returns the undo."""
    eng = engine(url)

    def limit(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        pages = cur.execute("PRAGMA page_count").fetchone()[0]
        cur.execute(f"PRAGMA max_page_count={pages}")
        cur.close()

    event.listen(eng, "connect", limit)
    eng.dispose()

    def undo():
        event.remove(eng, "connect", limit)
        eng.dispose()
    return undo


def test_a_full_disk_fails_every_waiter_of_the_group_and_the_writer_recovers_when_space_returns(own_store, monkeypatch):
    monkeypatch.setattr(ledger, "_writers", {})
    kind = f"test.group.{uuid.uuid4().hex[:8]}"
    with session() as s:  # fill the free pages, so the next entries need the file to grow
        s.execute(text("CREATE TABLE filler (x BLOB)"))
    with session() as s:
        for _ in range(50):
            s.execute(text("INSERT INTO filler VALUES (zeroblob(4000))"))
    undo = _full_disk(own_store)
    try:
        with pytest.raises(ledger.LedgerUnavailable) as info:
            for i in range(200):  # the first entries may still fit in the last page
                ledger.append_durable(kind, {"n": i, "pad": "x" * 2000})
        assert "OperationalError" in str(info.value) and "pad" not in str(info.value)
    finally:
        undo()
    written = _count(kind)
    ledger.append_durable(kind, {"n": "after"})  # the disk has room again: the same writer goes on
    assert _count(kind) == written + 1


@contextmanager
def _ledger_locked(backend: str):
    """The ledger table locked by another transaction while the block runs (PostgreSQL: LOCK TABLE; SQLite: the
    write lock held)."""
    blocker = engine(settings().database_url).connect()
    try:
        if backend == "postgresql":
            blocker.execute(text("BEGIN"))
            blocker.execute(text("LOCK TABLE ledger_events IN EXCLUSIVE MODE"))
        else:
            blocker.exec_driver_sql("BEGIN IMMEDIATE")
        yield
    finally:
        blocker.rollback()
        blocker.close()


def test_a_store_that_does_not_answer_is_refused_in_time_not_waited_for(module_database, monkeypatch):
    """The ledger table locked by another transaction (PostgreSQL: LOCK TABLE; SQLite: the write lock held): the
    entry is not confirmed within HUB_LEDGER_WAIT_S, LedgerUnavailable says so, and once the lock ends the entry
    (written late, never half) and the next ones go through."""
    monkeypatch.setenv("HUB_LEDGER_WAIT_S", "0.5")
    monkeypatch.setattr(ledger, "_writers", {})
    kind = f"test.group.{uuid.uuid4().hex[:8]}"
    with _ledger_locked(module_database):
        with pytest.raises(ledger.LedgerUnavailable, match="in time"):
            ledger.append_durable(kind, {"n": 1})
    monkeypatch.setenv("HUB_LEDGER_WAIT_S", "30")  # recovery is the point here, not how fast a busy machine gets there
    ledger.append_durable(kind, {"n": 2})
    assert _count(kind) == 2  # the late one was written once the lock ended, then the next


def test_an_entry_awaited_on_the_event_loop_is_durable_or_refused_in_time_and_a_waiter_that_leaves_harms_nothing(
        module_database, monkeypatch):
    """append_durable_async (the API's read on the event loop): returns once the entry is durable; refused with
    LedgerUnavailable within HUB_LEDGER_WAIT_S when the table is locked; a read cancelled meanwhile (its client left)
    leaves its entry to be written all the same, and the writer goes on with the next groups."""
    import asyncio

    monkeypatch.setattr(ledger, "_writers", {})
    kind = f"test.async.{uuid.uuid4().hex[:8]}"
    url = settings().database_url

    async def awaited(n: int) -> None:
        await ledger.append_durable_async(kind, {"n": n})

    asyncio.run(awaited(1))
    assert _count(kind) == 1  # visible to another connection the moment the await returned
    monkeypatch.setenv("HUB_LEDGER_WAIT_S", "0.5")

    async def refused_then_left() -> None:
        with pytest.raises(ledger.LedgerUnavailable, match="in time"):
            await awaited(2)
        task = asyncio.create_task(awaited(3))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with _ledger_locked(module_database):
        asyncio.run(refused_then_left())
    monkeypatch.setenv("HUB_LEDGER_WAIT_S", "30")
    asyncio.run(awaited(4))
    assert _count(kind) == 4  # 2 and 3 written once the lock ended (their waiters gone), then 4
    assert ledger.writer(url).thread.is_alive()
