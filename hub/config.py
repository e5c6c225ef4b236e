"""Settings read from the environment (never from the repository).

HUB_HOME          where the store and keys live (default ./var)
HUB_DATABASE_URL  SQLAlchemy URL of the store (default SQLite in HUB_HOME)
HUB_AGENCIES_URL  the simulated agencies' index (default http://127.0.0.1:8700/)
HUB_API_URL       where `hub api` is reached, for links in logs (default http://127.0.0.1:8000)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    home = Path(os.environ.get("HUB_HOME") or "var").resolve()
    url = os.environ.get("HUB_DATABASE_URL") or f"sqlite:///{home / 'hub.db'}"
    agencies = os.environ.get("HUB_AGENCIES_URL") or f"http://127.0.0.1:{DEFAULT_AGENCIES_PORT}/"
    api = os.environ.get("HUB_API_URL") or f"http://127.0.0.1:{DEFAULT_API_PORT}"
    return Settings(home=home, database_url=url, agencies_url=agencies, api_url=api)
