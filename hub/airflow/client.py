"""A small client of Airflow's REST API (v2): log in, trigger a DAG run, wait for it."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

from core.settings import DEFAULT_AIRFLOW_PORT, settings


class AirflowError(RuntimeError):
    pass


def admin_credentials(airflow_home: Path | None = None) -> tuple[str, str]:
    """The standalone admin's login, as simple auth manager generated it."""
    home = airflow_home or settings().airflow_home
    path = home / "simple_auth_manager_passwords.json.generated"
    if not path.exists():
        raise AirflowError(f"no generated Airflow password at {path}: is Airflow standalone running?")
    users = json.loads(path.read_text())
    user = "admin" if "admin" in users else next(iter(users))
    return user, users[user]


@dataclass
class AirflowClient:
    base_url: str
    username: str
    password: str
    _token: str | None = None
    poll_timeout: float = 10  # seconds a run's state may take to come back before it is asked again

    @classmethod
    def from_env(cls) -> "AirflowClient":
        cfg = settings()
        base = cfg.airflow_url or f"http://127.0.0.1:{DEFAULT_AIRFLOW_PORT}"
        user, password = cfg.airflow_login or admin_credentials()
        return cls(base.rstrip("/"), user, password)

    def _headers(self) -> dict:
        if self._token is None:
            resp = requests.post(f"{self.base_url}/auth/token", json={"username": self.username,
                                                                      "password": self.password}, timeout=10)
            if resp.status_code not in (200, 201):
                raise AirflowError(f"Airflow login failed ({resp.status_code})")
            self._token = resp.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def healthy(self) -> bool:
        try:
            health = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=3).json()
        except (requests.RequestException, ValueError):
            return False
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    def dag_ready(self, dag_id: str) -> bool:
        resp = requests.get(f"{self.base_url}/api/v2/dags/{dag_id}", headers=self._headers(), timeout=10)
        return resp.status_code == 200 and not resp.json().get("is_paused", False)

    def trigger(self, dag_id: str, conf: dict, *, attempts: int = 5) -> str:
        """Start a run. The run id is chosen here, so a retry after a 5xx (Airflow on SQLite answers "database
        is locked" now and then) cannot start a second run: a 409 means the first attempt did start it."""
        run_id = f"manual__hub_{uuid.uuid4().hex}"
        for attempt in range(attempts):
            try:
                resp = requests.post(f"{self.base_url}/api/v2/dags/{dag_id}/dagRuns", headers=self._headers(),
                                     json={"dag_run_id": run_id, "logical_date": None, "conf": conf}, timeout=30)
            except requests.RequestException:
                if attempt == attempts - 1:
                    raise
            else:
                if resp.status_code in (200, 201):
                    return resp.json()["dag_run_id"]
                if resp.status_code == 409 and attempt:
                    return run_id
                if resp.status_code < 500 or attempt == attempts - 1:
                    raise AirflowError(f"triggering {dag_id} failed ({resp.status_code}): {resp.text[:300]}")
            time.sleep(2 * (attempt + 1))
        raise AirflowError(f"triggering {dag_id} failed")

    def run_state(self, dag_id: str, run_id: str) -> str:
        resp = requests.get(f"{self.base_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}", headers=self._headers(),
                            timeout=self.poll_timeout)
        resp.raise_for_status()
        return resp.json()["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        resp = requests.get(f"{self.base_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                            headers=self._headers(), timeout=30)
        resp.raise_for_status()
        return resp.json()["task_instances"]

    def wait(self, dag_id: str, run_id: str, timeout: float = 600, interval: float = 2) -> str:
        """The run's final state, asked every ``interval`` s. A poll the API server does not answer in time, or
        answers with a 5xx (busy: a re-check loads the machine that serves it), is asked again until the deadline;
        any other error of the API (an unknown run, a refused login) ends the wait at once."""
        deadline = time.monotonic() + timeout
        problem = None
        while time.monotonic() < deadline:
            try:
                state = self.run_state(dag_id, run_id)
            except (requests.Timeout, requests.ConnectionError) as exc:
                problem = exc.__class__.__name__
            except requests.HTTPError as exc:
                if exc.response is None or exc.response.status_code < 500:
                    raise
                problem = f"HTTP {exc.response.status_code}"
            else:
                if state in ("success", "failed"):
                    return state
                problem = None
            time.sleep(interval)
        last = f" (the last poll: {problem})" if problem else ""
        raise AirflowError(f"{dag_id} run {run_id} did not finish within {timeout:.0f} s{last}")
