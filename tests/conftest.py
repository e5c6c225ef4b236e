"""Test set-up shared by every module.

At start-up (before anything imports Airflow) the session gets its own HUB_HOME in a temporary folder,
with fresh keys and a migrated SQLite store, and the Airflow environment of hub.airflow.env pointing at
it. Tests never touch ./var.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.support")  # the helpers' asserts explain themselves as a test's do

from tests.support.servers import serve_agencies  # noqa: E402
from tests.support.store import fresh_postgres  # noqa: E402

_HOME = Path(tempfile.mkdtemp(prefix="hub-test-"))

# pytest-randomly runs the modules, and the tests of each module, in an order of its seed (printed in the header;
# --randomly-seed=N replays it, -p no:randomly runs in file order). No test relies on another having run.


def pytest_configure(config):
    os.environ["HUB_HOME"] = str(_HOME)
    os.environ.pop("HUB_DATABASE_URL", None)
    os.environ["HUB_AGENCIES_URL"] = "http://127.0.0.1:9/"  # nothing listens: tests pass their agencies explicitly
    # the tests' population: every archetype in seed 7's 50 households (agencies.population.PROFILES)
    os.environ["HUB_POPULATION_PROFILE"] = "classic"
    # the API's worker validates in its own process in tests: a pool of warm processes per API started would cost
    # each test seconds of start-up; tests/schemas/test_parallel.py and the API's test of it start theirs
    os.environ["HUB_VALIDATION_PROCESSES"] = "0"
    from hub.airflow.env import airflow_environment
    from hub.services.bootstrap import initialize

    initialize()
    os.environ.update(airflow_environment())
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


def pytest_unconfigure(config):
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def fresh_connectors():
    """Every circuit breaker closed and no agencies' index remembered, before and after each test (the connectors
    keep both for the whole process): a test that opens an agency's circuit, or reads the index at an address that
    another server takes later, affects no other test, in any order."""
    from connectors import registry
    from connectors.transport import BREAKERS

    BREAKERS.reset()
    registry.reset()
    yield
    BREAKERS.reset()
    registry.reset()


@pytest.fixture
def agencies():
    """All simulated agencies on an ephemeral loopback port, pointed at by HUB_AGENCIES_URL."""
    yield from serve_agencies("none")


@pytest.fixture
def dirty_agencies():
    """The same agencies with the `dirty` fault profile."""
    yield from serve_agencies("dirty")


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
def module_database(request, tmp_path_factory):
    """``database`` for a whole module (its module-scoped fixtures made once per backend), on a store of the module's
    own on either backend (a migrated SQLite file, or a PostgreSQL database), so what it finds in the whole store (the
    ledger's integrity, a department's open requests) is its own doing, whatever ran before it."""
    from core.store import engine, upgrade

    with pytest.MonkeyPatch.context() as mp:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('module-store') / 'store.db'}"
            upgrade(url)
            mp.setenv("HUB_DATABASE_URL", url)
            try:
                yield request.param
            finally:
                engine(url).dispose()
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
