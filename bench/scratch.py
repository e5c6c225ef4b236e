"""A scratch HUB_HOME (fresh keys; a SQLite store in it, or a fresh PostgreSQL database) for a benchmark, removed
afterwards."""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import contextlib
import os
import shutil
import tempfile
from pathlib import Path


# where a PostgreSQL benchmark makes its database: a login that may create and drop databases (the machine's own
# PostgreSQL by default)
POSTGRES_ADMIN_URL = os.environ.get("HUB_BENCH_POSTGRES_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def scratch_home(prefix: str, *, postgres: bool = False):
    """HUB_HOME set to a new folder for the block (and HUB_DATABASE_URL to a new PostgreSQL database when
    ``postgres``), initialised as ``hub init`` would; everything removed afterwards. The API's own worker is off
    (HUB_INLINE_WORKER=0): a benchmark runs the verifications it times itself, and a worker would run them again."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    saved = {k: os.environ.get(k) for k in ("HUB_HOME", "HUB_DATABASE_URL", "HUB_INLINE_WORKER")}
    os.environ["HUB_HOME"] = str(home)
    os.environ["HUB_INLINE_WORKER"] = "0"
    os.environ.pop("HUB_DATABASE_URL", None)
    database = _create_database(prefix) if postgres else None
    try:
        if database:
            os.environ["HUB_DATABASE_URL"] = database
        from hub.services.bootstrap import initialize

        initialize()
        yield home
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(home, ignore_errors=True)
        if database:
            _drop_database(database)


def _admin():
    import sqlalchemy as sa

    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _create_database(prefix: str) -> str:
    import uuid

    import sqlalchemy as sa

    name = f"{prefix.strip('-').replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_database(url: str) -> None:
    import sqlalchemy as sa

    from core.store import engine

    engine(url).dispose()
    admin = _admin()
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()
