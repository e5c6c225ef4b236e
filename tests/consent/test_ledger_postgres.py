"""On PostgreSQL the application's role has no UPDATE or DELETE on the ledger tables (and triggers refuse them for
everyone else)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from hub.store import LEDGER_TABLES, grant_app_role

pytestmark = pytest.mark.postgres


@pytest.fixture
def app_role(postgres_url):
    role = f"hub_app_{uuid.uuid4().hex[:8]}"
    grant_app_role(postgres_url, role)
    url = postgres_url.replace("postgres@", f"{role}@", 1)
    eng = sa.create_engine(url)
    yield eng
    eng.dispose()
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP OWNED BY "{role}"'))
        c.execute(sa.text(f'DROP ROLE "{role}"'))
    admin.dispose()


def test_the_app_role_appends_but_cannot_update_or_delete_ledger_rows(app_role, postgres_url):
    with app_role.begin() as c:
        c.execute(sa.text("INSERT INTO ledger_events (kind, recorded_at, payload, leaf_sha256) "
                          "VALUES ('test', now(), '{}', :h)"), {"h": "0" * 64})
        c.execute(sa.text("SELECT count(*) FROM ledger_events")).scalar()
    column = {"ledger_events": "kind", "ledger_leaves": "seq", "ledger_nodes": "hash", "ledger_checkpoints": "size"}
    assert set(column) == set(LEDGER_TABLES)
    for table in LEDGER_TABLES:
        for st in (f"UPDATE {table} SET {column[table]} = {column[table]}", f"DELETE FROM {table}"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                with app_role.begin() as c:
                    c.execute(sa.text(st))
    with app_role.begin() as c:  # the rest of the store stays writable
        c.execute(sa.text("UPDATE requests SET status = status"))


def test_even_the_owner_is_refused_by_the_append_only_triggers(postgres_url):
    eng = sa.create_engine(postgres_url)
    try:
        with pytest.raises(sa.exc.ProgrammingError, match="append-only"):
            with eng.begin() as c:
                c.execute(sa.text("INSERT INTO ledger_events (kind, recorded_at, payload, leaf_sha256) "
                                  "VALUES ('test', now(), '{}', :h)"), {"h": "0" * 64})
                c.execute(sa.text("DELETE FROM ledger_events WHERE kind = 'test'"))
    finally:
        eng.dispose()
