"""Test set-up shared by every module.

At start-up (before anything imports Airflow) the session gets its own HUB_HOME in a temporary folder,
with fresh keys and a migrated SQLite store, and the Airflow environment of hub.airflow_env pointing at
it. Tests never touch ./var.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="hub-test-"))
POSTGRES_ADMIN_URL = os.environ.get("HUB_TEST_POSTGRES_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pytest_configure(config):
    os.environ["HUB_HOME"] = str(_HOME)
    os.environ.pop("HUB_DATABASE_URL", None)
    os.environ["HUB_AGENCIES_URL"] = "http://127.0.0.1:9/"  # nothing listens: tests pass their agencies explicitly
    from hub.airflow_env import airflow_environment
    from hub.bootstrap import initialize

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


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database for this session, migrated to head; dropped afterwards."""
    import sqlalchemy as sa

    name = f"hub_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:  # fail loudly: the PostgreSQL tests are part of the contract
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL.split('@')[-1]} is not reachable: {exc.__class__.__name__}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    from hub.store import engine, upgrade

    upgrade(url)
    yield url
    engine(url).dispose()
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, monkeypatch):
    """The store on each backend: the default SQLite of the session, or a PostgreSQL database."""
    if request.param == "postgresql":
        monkeypatch.setenv("HUB_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return request.param


def rate_limits_off(*unset: str):
    """For a module's autouse fixture: the API without rate limits (and without the variables named), restored
    afterwards."""
    import hub.api

    mp = pytest.MonkeyPatch()
    mp.setenv("HUB_API_RATE", "0")
    for name in unset:
        mp.delenv(name, raising=False)
    mp.setattr(hub.api, "_limiter", None)
    yield
    mp.undo()
    hub.api._limiter = None


def ledger_entries(kind: str, /, **match) -> list[dict]:
    """The ledger's entries of ``kind`` whose payload holds every ``match`` value, in order, each with its seq."""
    from sqlalchemy import select

    from hub.store import LedgerEvent, session

    with session() as s:
        rows = s.scalars(select(LedgerEvent).where(LedgerEvent.kind == kind).order_by(LedgerEvent.seq)).all()
        return [{"seq": e.seq, **e.payload} for e in rows if all(e.payload.get(k) == v for k, v in match.items())]
