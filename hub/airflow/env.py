"""The environment every Airflow process of the hub runs with (standalone, tests, `hub verify`).

Configuration is the repository's airflow.cfg; paths and secrets are set here: AIRFLOW_HOME under
HUB_HOME, HUB_ROOT (this repository, for airflow.cfg's dags_folder) and the secrets generated once by
`hub init` (never in the repository). Each agency is an Airflow connection ``agency_<key>`` whose host is its base URL.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from pathlib import Path

from connectors.auth import credentials_path, load_credentials
from core.settings import DEFAULT_AIRFLOW_PORT, settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def secrets_path() -> Path:
    return settings().home / "keys" / "airflow.json"


def create_secrets() -> bool:
    path = secrets_path()
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "fernet_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "jwt_secret": secrets.token_urlsafe(48),
        "api_secret_key": secrets.token_urlsafe(48),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
    return True


def agency_connection(base_url: str, secret: str) -> str:
    """An Airflow connection (JSON form of AIRFLOW_CONN_*) for one agency: host = base URL, password = credential."""
    return json.dumps({"conn_type": "http", "host": base_url, "password": secret})


def airflow_environment(*, port: int = DEFAULT_AIRFLOW_PORT, agency_urls: dict[str, str] | None = None) -> dict[str, str]:
    """Variables to add to the environment of Airflow processes."""
    cfg = settings()
    doc = json.loads(secrets_path().read_text())
    env = {
        "AIRFLOW_HOME": str(cfg.airflow_home),
        "AIRFLOW_CONFIG": str(REPO_ROOT / "airflow.cfg"),
        "HUB_ROOT": str(REPO_ROOT),
        "AIRFLOW__CORE__FERNET_KEY": doc["fernet_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": doc["jwt_secret"],
        "AIRFLOW__API__SECRET_KEY": doc["api_secret_key"],
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "HUB_HOME": str(cfg.home),
        "HUB_DATABASE_URL": cfg.database_url,
        "HUB_AGENCIES_URL": cfg.agencies_url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # the repository, and the folder of the hub's airflow_local_settings (hub.airflow.warm: tasks start warm)
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "hub" / "airflow" / "boot")]),
    }
    if agency_urls:
        creds = load_credentials(credentials_path(cfg.home))
        for key, url in agency_urls.items():
            env[f"AIRFLOW_CONN_AGENCY_{key.upper()}"] = agency_connection(url, creds[key].secret)
    return env
