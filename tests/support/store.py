"""The store as tests reach it: a fresh PostgreSQL database, the ledger's entries, writes past the append-only
triggers (tampering), authorizations made to expire for a block."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

import pytest

POSTGRES_ADMIN_URL = os.environ.get("HUB_TEST_POSTGRES_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_postgres(prefix: str = "hub_test", template: str | None = None):
    """The URL of a new PostgreSQL database, migrated to head (or a copy of the database ``template``), dropped
    afterwards. PostgreSQL out of reach fails the test loudly: the PostgreSQL tests are part of the contract."""
    import sqlalchemy as sa

    from core.store import engine, upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL.split('@')[-1]} is not reachable: {exc.__class__.__name__}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        if template is None:
            upgrade(url)
        yield url
    finally:
        engine(url).dispose()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def ledger_entries(kind: str, /, **match) -> list[dict]:
    """The ledger's entries of ``kind`` whose payload holds every ``match`` value, in order, each with its seq."""
    from sqlalchemy import select

    from core.store import LedgerEvent, session

    with session() as s:
        rows = s.scalars(select(LedgerEvent).where(LedgerEvent.kind == kind).order_by(LedgerEvent.seq)).all()
        return [{"seq": e.seq, **e.payload} for e in rows if all(e.payload.get(k) == v for k, v in match.items())]


@contextmanager
def tampering(url: str | None = None):
    """A connection that writes as the store's owner could, past the append-only triggers (SQLite: every trigger
    dropped for the block and made again after it; PostgreSQL: ``session_replication_role = replica``, a
    superuser's switch that fires no trigger). For tests of what tampering is found, and to put the store in
    states the application cannot reach."""
    from sqlalchemy import text

    from core.store import engine

    eng = engine(url)
    with eng.begin() as c:
        if eng.dialect.name == "postgresql":
            c.execute(text("SET LOCAL session_replication_role = replica"))
            yield c
            return
        triggers = c.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
        for name, _ in triggers:
            c.execute(text(f'DROP TRIGGER "{name}"'))
        yield c
        for _, sql in triggers:
            c.execute(text(sql))


@contextmanager
def valid_until(request_id: str, until):
    """The request's authorizations valid until ``until`` within the block (a state only time reaches: written past
    the append-only triggers), restored after it, so the ledger that vouches for them holds again."""
    from sqlalchemy import select, update

    from core.store import Authorization, session

    with session() as s:
        saved = dict(s.execute(select(Authorization.id, Authorization.valid_until)
                               .where(Authorization.request_id == request_id)).all())
    with tampering() as c:
        c.execute(update(Authorization).where(Authorization.request_id == request_id).values(valid_until=until))
    try:
        yield
    finally:
        with tampering() as c:
            for auth_id, was in saved.items():
                c.execute(update(Authorization).where(Authorization.id == auth_id).values(valid_until=was))


def stored_batches(request_id: str) -> dict[str, dict]:
    """Per source: the request's batch as stored (its id, outcome, counts, members, exchange) and its rows decrypted,
    in order, with the row numbers validation quarantined."""
    import json

    from sqlalchemy import select

    from core.crypto import keyring
    from core.store import FetchBatch, SourceRow, aad_source_row, session

    keys = keyring()
    with session() as s:
        out = {}
        for b in s.scalars(select(FetchBatch).where(FetchBatch.request_id == request_id)):
            rows = s.scalars(select(SourceRow).where(SourceRow.batch_id == b.id).order_by(SourceRow.row_no)).all()
            out[b.source] = {
                "id": b.id, "status": b.status, "reason": b.reason, "requested": b.requested, "refused": b.refused,
                "returned": b.returned, "members": b.members, "response_sha256": b.response_sha256,
                "exchange_id": b.exchange_id,
                "rows": [(r.person_ref, json.loads(keys.decrypt(r.data_enc, aad=aad_source_row(b.id, r.row_no))))
                         for r in rows],
                "quarantined": {r.row_no for r in rows if r.valid is False}}
        return out
