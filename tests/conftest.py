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
    # test_the_auditor_sees_integrity_... looks for a record.read on the head's timeline: the read of
    # test_the_caseworker_follows_the_request_and_prints_the_record
    "tests.hub.web.test_console_roles",
    # test_unusual_reads_flag_refusals_bulk_and_off_hours asks for the unusual reads of the last two seconds and expects
    # its own only: test_errors_do_not_echo_id_numbers_or_names, run just before it, adds lookup_refused ones
    "tests.hub.web.test_access",
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


def _shared_params(item) -> tuple:
    """The item's parameters of fixtures set up once for many tests (module scope or wider), e.g. module_database."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return ()
    defs = item._fixtureinfo.name2fixturedefs
    return tuple(sorted((name, index) for name, index in callspec.indices.items()
                        if name in defs and defs[name][-1].scope in ("module", "package", "session")))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Around every reordering (pytest-randomly's, then pytest's grouping by the parameters of module-scoped
    fixtures): the tests of each IN_FILE_ORDER module put back in the order they were collected in, within each
    group of such parameters (each group kept where it was, so a module-scoped fixture is still set up once per
    parameter), in the places the reordering gave that module."""
    collected = {id(item): n for n, item in enumerate(items)}
    result = yield
    slots: dict[str, list[int]] = {}
    for n, item in enumerate(items):
        module = getattr(getattr(item, "module", None), "__name__", None)
        if module in IN_FILE_ORDER:
            slots.setdefault(module, []).append(n)
    for places in slots.values():
        group_at: dict[tuple, int] = {}
        for n in places:
            group_at.setdefault(_shared_params(items[n]), n)
        ordered = sorted((items[n] for n in places),
                         key=lambda item: (group_at[_shared_params(item)], collected[id(item)]))
        for n, item in zip(places, ordered):
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
