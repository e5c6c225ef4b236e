"""Settings read from the environment (never from the repository).

HUB_HOME          where the store and keys live (default ./var)
HUB_DATABASE_URL  SQLAlchemy URL of the store (default SQLite in HUB_HOME)
HUB_AGENCIES_URL  the simulated agencies' index (default http://127.0.0.1:8700/)
HUB_API_URL       where `hub api` is reached, for links in logs (default http://127.0.0.1:8000)
HUB_LOOKUP_PER_HOUR  household lookups (一证通办) a department may make per rolling hour (default 30)
HUB_DEFAULT_DATA_LIFE_DAYS  how long raw agency answers are kept when no authorization states a data life
                  (a request stored without one, or whose authorizations are gone; default 30, from 1 to 3650)
HUB_API_MAX_BODY_BYTES  the largest request body the JSON API reads (default 1048576, 1 MiB, as the DCI routes'):
                  a larger one is refused with 413
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_AGENCIES_PORT = 8700
DEFAULT_API_PORT = 8000
DEFAULT_AIRFLOW_PORT = 8080
DEFAULT_DATA_LIFE_DAYS = 30
DEFAULT_API_MAX_BODY_BYTES = 1 << 20


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

    @property
    def default_data_life_days(self) -> int:
        """HUB_DEFAULT_DATA_LIFE_DAYS: whole days from 1 to 3650, as an authorization's data life (ValueError
        otherwise, naming the variable only)."""
        raw = os.environ.get("HUB_DEFAULT_DATA_LIFE_DAYS", "").strip() or str(DEFAULT_DATA_LIFE_DAYS)
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= 3650):
            raise ValueError("HUB_DEFAULT_DATA_LIFE_DAYS: whole days from 1 to 3650")
        return int(raw)

    @property
    def lookup_per_hour(self) -> int:
        """HUB_LOOKUP_PER_HOUR: a whole number, at least 1 (ValueError otherwise, naming the variable only)."""
        raw = os.environ.get("HUB_LOOKUP_PER_HOUR", "").strip() or "30"
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and int(raw) >= 1):
            raise ValueError("HUB_LOOKUP_PER_HOUR: a whole number of household lookups per hour, at least 1")
        return int(raw)

    @property
    def api_max_body_bytes(self) -> int:
        """HUB_API_MAX_BODY_BYTES: whole bytes from 1024 to 1 GiB (ValueError otherwise, naming the variable only)."""
        raw = os.environ.get("HUB_API_MAX_BODY_BYTES", "").strip() or str(DEFAULT_API_MAX_BODY_BYTES)
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and 1024 <= int(raw) <= 1 << 30):
            raise ValueError("HUB_API_MAX_BODY_BYTES: a whole number of bytes from 1024 to 1073741824")
        return int(raw)


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
