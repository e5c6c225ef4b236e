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
# --randomly-seed=N replays it, -p no:randomly runs in file order). The modules named here keep their tests in the
# order they are written in: a test of theirs relies on what an earlier one did. Each is a debt, to be paid in the
# module and its line dropped from here.
IN_FILE_ORDER = {
    # test_rotation_under_load_... counts two keys.rotated ledger entries: its own and the rotation.new_key() of
    # test_a_ciphertext_moved_to_another_row_or_relabelled_fails_to_decrypt
    "tests.hub.services.test_rotation",
    # test_a_request_in_anshan_completes_... compares Dalian's answer with the first version of Dalian's record,
    # which test_anshan_follows_the_members_household_in_dalian_... publishes again
    "tests.hub.federation.test_client",
    # test_the_auditor_sees_integrity_... looks for a record.read on the head's timeline: the read of
    # test_the_caseworker_follows_the_request_and_prints_the_record
    "tests.hub.web.test_console_roles",
}


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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Around every reordering (pytest-randomly's included): the tests of the IN_FILE_ORDER modules put back in the
    order they were collected in, in the places the reordering gave them."""
    collected = {id(item): n for n, item in enumerate(items)}
    result = yield
    slots = [n for n, item in enumerate(items) if getattr(getattr(item, "module", None), "__name__", None) in IN_FILE_ORDER]
    for n, item in zip(slots, sorted((items[n] for n in slots), key=lambda item: collected[id(item)])):
        items[n] = item
    return result


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
