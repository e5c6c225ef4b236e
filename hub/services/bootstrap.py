"""`hub init`: create or upgrade everything the hub needs under HUB_HOME (idempotent; keeps existing keys)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import make_url

from connectors.auth import create_credentials, credentials_path
from connectors.identity import create_registration
from connectors.signing import create_answer_keys
from core.crypto import create_keyring
from core.settings import settings
from core.store import grant_app_role, upgrade
from hub.airflow.env import create_secrets
from schemas.contracts import SPECS


@dataclass(frozen=True)
class InitResult:
    keyring_created: bool
    airflow_secrets_created: bool
    agency_credentials_created: bool
    agency_answer_keys_created: bool = False
    identity_registration_created: bool = False


def initialize() -> InitResult:
    cfg = settings()
    cfg.home.mkdir(parents=True, exist_ok=True)
    result = InitResult(
        keyring_created=create_keyring(cfg.keyring_path),
        airflow_secrets_created=create_secrets(),
        # The simulated agencies issue one credential each; the hub and the simulator both read this file.
        agency_credentials_created=create_credentials(credentials_path(cfg.home),
                                                      {k: s.auth for k, s in SPECS.items()}),
        # Each simulated agency signs its answers with a key of its own; the hub trusts the public halves.
        agency_answer_keys_created=create_answer_keys(cfg.home, SPECS),
        # The hub's client registration with the (simulated) identity provider residents sign in with (/m/).
        identity_registration_created=create_registration(cfg.home),
    )
    admin_url = cfg.database_admin_url
    if admin_url:
        # PostgreSQL with separate roles: migrate as the owner, then let the application's login (the user of
        # HUB_DATABASE_URL) read and write, with only SELECT and INSERT on the ledger tables.
        upgrade(admin_url)
        app_user = make_url(cfg.database_url).username
        if app_user and app_user != make_url(admin_url).username:
            grant_app_role(admin_url, app_user)
    else:
        upgrade()
    return result
