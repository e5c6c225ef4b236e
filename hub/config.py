"""Settings read from the environment (never from the repository).

HUB_HOME          where the store and keys live (default ./var)
HUB_DATABASE_URL  SQLAlchemy URL of the store (default SQLite in HUB_HOME)
HUB_AGENCIES_URL  the simulated agencies' index (default http://127.0.0.1:8700/)
HUB_API_URL       where `hub api` is reached, for links in logs (default http://127.0.0.1:8000)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_AGENCIES_PORT = 8700
DEFAULT_API_PORT = 8000
DEFAULT_AIRFLOW_PORT = 8080


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    agencies_url: str
    api_url: str = f"http://127.0.0.1:{DEFAULT_API_PORT}"

    @property
    def keyring_path(self) -> Path:
        return self.home / "keys" / "keyring.json"

    @property
    def airflow_home(self) -> Path:
        return Path(os.environ.get("AIRFLOW_HOME") or self.home / "airflow")


def settings() -> Settings:
    """The settings as the environment says now (read on every call: tests and tools change it)."""
    return _settings(os.environ.get("HUB_HOME"), os.environ.get("HUB_DATABASE_URL"),
                     os.environ.get("HUB_AGENCIES_URL"), os.environ.get("HUB_API_URL"), os.getcwd())


@lru_cache(maxsize=32)
def _settings(home: str | None, url: str | None, agencies: str | None, api: str | None, _cwd: str) -> Settings:
    root = Path(home or "var").resolve()
    return Settings(home=root, database_url=url or f"sqlite:///{root / 'hub.db'}",
                    agencies_url=agencies or f"http://127.0.0.1:{DEFAULT_AGENCIES_PORT}/",
                    api_url=api or f"http://127.0.0.1:{DEFAULT_API_PORT}")
