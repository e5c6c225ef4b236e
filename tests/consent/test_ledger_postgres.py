"""On PostgreSQL the application's role has no UPDATE or DELETE on the ledger tables (and triggers refuse them for
everyone else)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from core.store import CONSENT_TABLES, LEDGER_TABLES, grant_app_role

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


def _no_update_or_delete(app_role, columns: dict[str, str]) -> None:
    """The application role may read each table but neither update (``columns``: one column each) nor delete."""
    for table, column in columns.items():
        for st in (f"UPDATE {table} SET {column} = {column}", f"DELETE FROM {table}"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                with app_role.begin() as c:
                    c.execute(sa.text(st))
        with app_role.begin() as c:
            c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()


def test_the_app_role_appends_but_cannot_update_or_delete_ledger_rows(app_role, postgres_url):
    with app_role.connect() as c, c.begin() as tx:  # appending works (rolled back: the session's ledger stays whole)
        c.execute(sa.text("INSERT INTO ledger_events (kind, recorded_at, payload, leaf_sha256) "
                          "VALUES ('test', now(), '{}', :h)"), {"h": "0" * 64})
        tx.rollback()
    column = {"ledger_events": "kind", "ledger_leaves": "seq", "ledger_nodes": "hash", "ledger_checkpoints": "size"}
    assert set(column) == set(LEDGER_TABLES)
    _no_update_or_delete(app_role, column)
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


def test_the_app_role_changes_consent_only_by_appending(app_role):
    """An authorization, its members, its revocations and expiries: the application role inserts, never updates or
    deletes (so it cannot undo a revocation or widen a consent, even when the triggers are gone)."""
    column = {"authorizations": "valid_until", "authorization_members": "sources", "revocations": "revoked_at",
              "authorization_expiries": "logged_at"}
    assert set(column) == set(CONSENT_TABLES)
    _no_update_or_delete(app_role, column)
    with app_role.connect() as c, c.begin() as tx:  # appending works (and is rolled back: no entries were logged)
        c.execute(sa.text("INSERT INTO requests (id, department, purpose, case_ref, sources, status, kind, created_at, "
                          "updated_at) VALUES ('r_app', 'MZ-1', 'dibao', 'c', '[]', 'received', 'application', now(), "
                          "now())"))
        c.execute(sa.text("INSERT INTO authorizations (id, request_id, department, purpose, valid_from, valid_until, "
                          "recheck_interval_days, data_life_days, receipt, receipt_sha256, created_at) VALUES "
                          "('a_app', 'r_app', 'MZ-1', 'dibao', now(), now(), 90, 30, '{}', :h, now())"), {"h": "0" * 64})
        c.execute(sa.text("INSERT INTO revocations (authorization_id, revoked_at) VALUES ('a_app', now())"))
        assert c.execute(sa.text("SELECT count(*) FROM revocations WHERE authorization_id = 'a_app'")).scalar() == 1
        tx.rollback()
