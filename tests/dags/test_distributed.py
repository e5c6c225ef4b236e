"""The same DAGs on the distributed set-up: CeleryExecutor with the Redis and PostgreSQL that run on this machine,
a scheduler, a DAG processor, the API server and two Celery workers. A re-check of current recipients is
triggered through Airflow's REST API and runs on the workers against the hub's store on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Agencies on loopback, the hub's store and Airflow's metadata on PostgreSQL, Redis, two Celery workers."""
    from agencies.server import AgencyServer
    from hub.airflow.client import AirflowClient, admin_credentials
    from hub.demo import Children, wait_for
    from hub.airflow.distributed import Cluster, drop_databases, ensure_databases, environment, migrate, start

    tmp = tmp_path_factory.mktemp("distributed")
    saved = {k: os.environ.get(k) for k in ("HUB_DATABASE_URL", "HUB_AGENCIES_URL")}
    server = AgencyServer.from_hub_home(households=50, seed=7).start()
    c = Cluster(prefix=f"hub_ci_{uuid.uuid4().hex[:8]}", port=8097, log_port=8893)
    ensure_databases(c)
    os.environ["HUB_DATABASE_URL"] = c.store_url  # this process seeds the same store the workers use
    os.environ["HUB_AGENCIES_URL"] = server.url
    env = {**environment(c), "AIRFLOW_HOME": str(tmp / "airflow")}
    children = Children(tmp / "log")
    try:
        migrate(env)
        start(children, c, env)
        home = Path(env["AIRFLOW_HOME"])

        def client():
            return AirflowClient(f"http://127.0.0.1:{c.port}", *admin_credentials(home))

        def ready():
            return (home / "simple_auth_manager_passwords.json.generated").exists() and \
                client().healthy() and client().dag_ready("reverify_recipients")

        wait_for("distributed Airflow", ready, children, 300)
        yield c, client(), children
    finally:
        children.stop()
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        drop_databases(c)


def test_a_reverify_run_triggered_through_the_rest_api_runs_on_two_celery_workers(cluster):
    from agencies.server import Population
    from hub.stages.intake import create_request
    from hub.stages.pipeline import run_inline
    from core.store import HouseholdRecord, Request, session
    from tests.support.households import sample

    c, airflow, children = cluster
    pop = Population(7, 50)
    eligible = [h.index for h in pop.households if pop._facts(h.index).truth.archetype == "dibao"][:3]
    apps = []
    for k in eligible:
        app = create_request(sample(k, sources=["household", "tax", "bank"]))
        assert run_inline(app).status == "published"
        apps.append(app)

    run_id = airflow.trigger("reverify_recipients", {"application_ids": apps, "batch_size": 1})
    assert airflow.wait("reverify_recipients", run_id, timeout=400) == "success"

    with session() as s:  # the workers wrote to the hub's store on PostgreSQL
        assert "postgresql" in str(s.get_bind().url)
        rechecks = s.scalars(select(Request).where(Request.parent_id.in_(apps))).all()
        assert sorted(r.parent_id for r in rechecks) == sorted(apps)
        assert all(r.status == "published" for r in rechecks)
        assert s.scalars(select(HouseholdRecord).where(HouseholdRecord.request_id.in_([r.id for r in rechecks]))).all()

    instances = airflow.task_instances("reverify_recipients", run_id)
    batches = [ti for ti in instances if ti["task_id"] == "recheck_batch"]
    assert len(batches) == 3 and all(ti["state"] == "success" for ti in batches)
    assert {ti["queue"] for ti in instances} == {c.queue}  # sent to our Celery workers, nowhere else
    logs = {i: (children.log_dir / f"airflow-worker-{i}.log").read_text(errors="replace") for i in (1, 2)}
    assert all(f"worker{i}@" in logs[i] and "ready" in logs[i] for i in (1, 2))  # two workers were up
    assert sum(log.count("execute_workload") for log in logs.values()) >= 5  # and ran the run's tasks
    # each worker loaded GX and the suites before its pool forked the tasks (hub.airflow.warm); the scheduler,
    # which forks none under Celery, did not
    assert all("hub.airflow.warm: the hub's task processes start warm" in logs[i] for i in (1, 2))
    assert "hub.airflow.warm" not in (children.log_dir / "airflow-scheduler.log").read_text(errors="replace")
    assert os.environ["HUB_DATABASE_URL"] == c.store_url


def test_a_department_request_through_the_api_starts_verify_household_on_the_workers(cluster, monkeypatch):
    from fastapi.testclient import TestClient

    from hub.web.app import create_app
    from hub.services.clients import create_client
    from tests.support.households import sample

    c, airflow, _children = cluster
    monkeypatch.setenv("HUB_AIRFLOW_URL", airflow.base_url)
    monkeypatch.setenv("HUB_AIRFLOW_USER", airflow.username)
    monkeypatch.setenv("HUB_AIRFLOW_PASSWORD", airflow.password)
    _, token = create_client("caseworker", "department", "MZ-210302")
    api, auth = TestClient(create_app()), {"Authorization": f"Bearer {token}"}
    created = api.post("/v1/requests", json=sample(24), headers=auth)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["dag_run_id"] and body["status"] == "received"
    assert airflow.wait("verify_household", body["dag_run_id"], timeout=300) == "success"
    assert api.get(f"/v1/requests/{body['id']}", headers=auth).json()["status"] == "published"
    assert {ti["queue"] for ti in airflow.task_instances("verify_household", body["dag_run_id"])} == {c.queue}
