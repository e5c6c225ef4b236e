"""Outside development the hub refuses default, missing or exposed secrets, naming the setting and never a value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import settings
from hub.services.secrets_check import InsecureSettings, enforce, problems

STRONG = "pg-" + "s3cret-Value-x" * 2


@pytest.fixture
def production(monkeypatch):
    monkeypatch.setenv("HUB_ENV", "production")
    monkeypatch.delenv("HUB_API_RATE", raising=False)
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    return monkeypatch


def test_development_starts_with_what_hub_init_made(monkeypatch):
    monkeypatch.delenv("HUB_ENV", raising=False)
    enforce()  # the embedded SQLite store, no database password: fine for development


def test_production_refuses_the_embedded_store_and_weak_or_default_passwords(production):
    with pytest.raises(InsecureSettings) as err:
        enforce()
    assert any("HUB_DATABASE_URL is not set" in p for p in err.value.problems), err.value.problems
    for weak in ("postgres", "short-one", ""):
        production.setenv("HUB_DATABASE_URL", f"postgresql+psycopg://hub:{weak}@db.internal:5432/hub")
        found = problems()
        assert any("database password" in p for p in found), (weak, found)
        assert not weak or all(weak not in p for p in found), found  # the value itself is never repeated
    production.setenv("HUB_DATABASE_URL", f"postgresql+psycopg://hub:{STRONG}@db.internal:5432/hub")
    assert problems() == []
    enforce()
    production.setenv("HUB_API_RATE", "0")
    assert problems() == ["HUB_API_RATE turns rate limits off"]


def test_production_refuses_a_keyring_others_can_read(production):
    production.setenv("HUB_DATABASE_URL", f"postgresql+psycopg://hub:{STRONG}@db.internal:5432/hub")
    path = settings().keyring_path
    mode = path.stat().st_mode & 0o777
    try:
        path.chmod(0o644)
        with pytest.raises(InsecureSettings) as err:
            enforce()
        assert err.value.problems == [f"the keyring ({path}) is readable by others (mode 644; must be 600)"]
    finally:
        path.chmod(mode)


def test_hub_api_will_not_start_in_production_on_the_defaults(tmp_path):
    env = {**os.environ, "HUB_HOME": str(tmp_path / "var"), "HUB_ENV": "production"}
    env.pop("HUB_DATABASE_URL", None)
    hub = str(Path(sys.executable).parent / "hub")
    assert subprocess.run([hub, "init"], env=env, capture_output=True, timeout=120).returncode == 0
    out = subprocess.run([hub, "api", "--port", "9"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "refusing to start outside development" in out.stderr
    assert "HUB_DATABASE_URL is not set" in out.stderr
