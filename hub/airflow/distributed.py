"""The same DAGs on Airflow's own distributed executor: CeleryExecutor with Redis as the broker, PostgreSQL for
Airflow's metadata and for the hub's store; a scheduler, a DAG processor, the API server and N Celery workers.

`make run-distributed` (``hub demo --distributed``) and the distributed tests start it through ``start``. What
changes from the embedded default is only configuration (environment variables over the repository's airflow.cfg);
the DAG files and the stages are the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from hub.airflow.env import airflow_environment

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Cluster:
    """Where the distributed set-up keeps its state, and how many workers it runs."""

    admin_url: str = DEFAULT_ADMIN_URL  # a PostgreSQL login that may create databases
    redis_url: str = DEFAULT_REDIS_URL
    prefix: str = "hub_dist"  # databases <prefix>_store (the hub) and <prefix>_airflow (Airflow's metadata)
    port: int = 8080  # Airflow's API server
    workers: int = 2
    log_port: int = 8793  # worker i serves its task logs on log_port + i
    queue: str = field(default_factory=lambda: f"hub-{uuid.uuid4().hex[:8]}")  # tasks go only to our workers

    def url(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{self.prefix}_{name}"

    @property
    def store_url(self) -> str:
        return self.url("store")

    @property
    def airflow_url(self) -> str:
        return self.url("airflow")


def ensure_databases(cluster: Cluster) -> None:
    admin = sa.create_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            for name in ("store", "airflow"):
                db = f"{cluster.prefix}_{name}"
                if not c.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": db}).scalar():
                    c.execute(sa.text(f'CREATE DATABASE "{db}"'))
    finally:
        admin.dispose()


def drop_databases(cluster: Cluster) -> None:
    admin = sa.create_engine(cluster.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            for name in ("store", "airflow"):
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{cluster.prefix}_{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def environment(cluster: Cluster, agency_urls: dict[str, str] | None = None) -> dict[str, str]:
    """The embedded default's Airflow environment, moved onto Celery, Redis and PostgreSQL."""
    env = airflow_environment(port=cluster.port, agency_urls=agency_urls)
    celery_backend = "db+" + cluster.airflow_url  # Celery keeps task results beside Airflow's metadata
    env.update({
        "HUB_DATABASE_URL": cluster.store_url,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": cluster.airflow_url,
        # psycopg 3 is async too (Airflow's default async driver for PostgreSQL, asyncpg, is not installed)
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": cluster.airflow_url.replace("+psycopg://", "+psycopg_async://", 1),
        "AIRFLOW__CELERY__BROKER_URL": cluster.redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": celery_backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": cluster.queue,
        "AIRFLOW__CORE__PARALLELISM": "8",
    })
    return env


def migrate(env: dict[str, str]) -> None:
    """Airflow's metadata database and the hub's store, both on PostgreSQL."""
    airflow = str(Path(sys.executable).parent / "airflow")
    out = subprocess.run([airflow, "db", "migrate"], env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed: {out.stderr[-2000:]}")
    hub = str(Path(sys.executable).parent / "hub")
    out = subprocess.run([hub, "init"], env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"hub init failed: {out.stderr[-2000:]}")


def start(children, cluster: Cluster, env: dict[str, str]) -> None:
    """The API server, the scheduler, the DAG processor and the Celery workers, as children."""
    airflow = str(Path(sys.executable).parent / "airflow")
    children.start("airflow-api-server", [airflow, "api-server", "--port", str(cluster.port)], env=env)
    children.start("airflow-scheduler", [airflow, "scheduler"], env=env)
    children.start("airflow-dag-processor", [airflow, "dag-processor"], env=env)
    home = Path(env["AIRFLOW_HOME"])
    for i in range(1, cluster.workers + 1):  # on one machine: each its own name, pid file and log-server port
        children.start(f"airflow-worker-{i}",
                       [airflow, "celery", "worker", "--celery-hostname", f"worker{i}@%h", "--queues", cluster.queue,
                        "--concurrency", "2", "--pid", str(home / f"airflow-worker-{i}.pid")],
                       env={**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(cluster.log_port + i)})
