"""Test set-up shared by every module.

At start-up (before anything imports Airflow) the session gets its own HUB_HOME in a temporary folder,
with fresh keys and a migrated SQLite store, and the Airflow environment of hub.airflow.env pointing at
it. Tests never touch ./var.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="hub-test-"))
POSTGRES_ADMIN_URL = os.environ.get("HUB_TEST_POSTGRES_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pytest_configure(config):
    os.environ["HUB_HOME"] = str(_HOME)
    os.environ.pop("HUB_DATABASE_URL", None)
    os.environ["HUB_AGENCIES_URL"] = "http://127.0.0.1:9/"  # nothing listens: tests pass their agencies explicitly
    from hub.airflow.env import airflow_environment
    from hub.services.bootstrap import initialize

    initialize()
    os.environ.update(airflow_environment())
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


def pytest_unconfigure(config):
    shutil.rmtree(_HOME, ignore_errors=True)


def _serve(faults: str):
    from agencies.server import AgencyServer

    server = AgencyServer.from_hub_home(households=50, seed=7, faults=faults).start()
    old = os.environ["HUB_AGENCIES_URL"]
    os.environ["HUB_AGENCIES_URL"] = server.url
    try:
        yield server
    finally:
        os.environ["HUB_AGENCIES_URL"] = old
        server.stop()


@pytest.fixture
def agencies():
    """All simulated agencies on an ephemeral loopback port, pointed at by HUB_AGENCIES_URL."""
    yield from _serve("none")


@pytest.fixture
def dirty_agencies():
    """The same agencies with the `dirty` fault profile."""
    yield from _serve("dirty")


def sample(k: int = 3, **kw) -> dict:
    from agencies.requests import sample_request

    return sample_request(seed=7, households=50, k=k, **kw)


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


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database for this session, migrated to head; dropped afterwards."""
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def own_store(tmp_path, monkeypatch):
    """A migrated SQLite store of the test's own, as HUB_DATABASE_URL: for a test that puts the store in a state
    only tampering reaches (the session's store must stay one the ledger vouches for)."""
    from core.store import engine, upgrade

    url = f"sqlite:///{tmp_path / 'own.db'}"
    upgrade(url)
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    yield url
    engine(url).dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database(request):
    """``database`` for a whole module (its module-scoped fixtures made once per backend); on PostgreSQL a database
    of the module's own, so what it checks of the whole store (the ledger's integrity) is its own doing."""
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "sqlite":
            yield request.param
            return
        with fresh_postgres("hub_module") as url:
            mp.setenv("HUB_DATABASE_URL", url)
            yield request.param


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, monkeypatch):
    """The store on each backend: the default SQLite of the session, or a PostgreSQL database."""
    if request.param == "postgresql":
        monkeypatch.setenv("HUB_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return request.param


def rate_limits_off(*unset: str):
    """For a module's autouse fixture: the API without rate limits (and without the variables named), restored
    afterwards."""
    import hub.web.api

    mp = pytest.MonkeyPatch()
    mp.setenv("HUB_API_RATE", "0")
    for name in unset:
        mp.delenv(name, raising=False)
    mp.setattr(hub.web.api, "_limiter", None)
    yield
    mp.undo()
    hub.web.api._limiter = None


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
