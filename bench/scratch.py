"""A scratch HUB_HOME (SQLite store, fresh keys) for a benchmark, removed afterwards."""

from __future__ import annotations

# Imports inside functions below are deliberate: `hub bench` imports every benchmark to list it, and each loads
# what it measures only when it runs (some in a child process of their own, with a scratch HUB_HOME set first).
import contextlib
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def scratch_home(prefix: str):
    home = Path(tempfile.mkdtemp(prefix=prefix))
    saved = {k: os.environ.get(k) for k in ("HUB_HOME", "HUB_DATABASE_URL")}
    os.environ["HUB_HOME"] = str(home)
    os.environ.pop("HUB_DATABASE_URL", None)
    try:
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
