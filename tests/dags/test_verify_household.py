"""The verify_household DAG: it loads, it is wired as documented, and dag.test() publishes a record."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hub.airflow.env import REPO_ROOT
from tests.support.airflow import DAGS, serialized_dag

pytestmark = pytest.mark.airflow


def test_every_dag_file_loads_without_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "verify_household" in dagbag.dag_ids
    assert len(dagbag.dag_ids) == len(list(DAGS.glob("*.py")))


def test_airflow_runs_on_the_repository_airflow_cfg():
    from airflow.configuration import conf

    assert os.environ["AIRFLOW_CONFIG"] == str(REPO_ROOT / "airflow.cfg")
    assert conf.get("core", "dags_folder") == str(DAGS)
    assert conf.getboolean("core", "load_examples") is False
    assert conf.getint("core", "parallelism") == 4
    assert conf.get("core", "executor") == "LocalExecutor"


def test_dag_files_import_no_heavy_library_at_parse_time():
    for path in DAGS.glob("*.py"):
        code = (
            "import sys, runpy; runpy.run_path(sys.argv[1]); "
            "heavy = {'great_expectations', 'pandas', 'sqlalchemy', 'requests', 'hub.stages.pipeline'} & set(sys.modules); "
            "print(sorted(heavy)); sys.exit(1 if heavy - {'sqlalchemy', 'requests', 'pandas'} else 0)"
        )
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=os.environ)
        assert out.returncode == 0, out.stdout + out.stderr[-2000:]


def test_verify_household_structure(dagbag):
    dag = dagbag.dags["verify_household"]
    assert set(dag.task_ids) == {"start_request", "fetch_source", "validate_batch", "cross_check", "publish_record"}
    assert dag.get_task("fetch_source").upstream_task_ids == {"start_request"}
    assert dag.get_task("validate_batch").upstream_task_ids == {"fetch_source"}
    assert dag.get_task("cross_check").upstream_task_ids == {"validate_batch"}
    assert dag.get_task("publish_record").upstream_task_ids == {"cross_check"}
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(dag.get_task("fetch_source"), MappedOperator)
    assert isinstance(dag.get_task("validate_batch"), MappedOperator)
    assert dag.schedule is None and "verification" in dag.tags and dag.doc_md


def test_dag_test_publishes_the_same_record_as_hub_verify_sync(airflow_db, agencies, monkeypatch):
    from hub.cli import main
    from hub.stages.intake import create_request
    from hub.stages.records import record_of_request
    from core.store import Request, session
    from tests.support.households import sample

    monkeypatch.setenv("AIRFLOW_CONN_AGENCY_HOUSEHOLD", f'{{"conn_type": "http", "host": "{agencies.base_url("household")}"}}')
    monkeypatch.setenv("HUB_AGENCIES_URL", "http://127.0.0.1:9/")  # the DAG must use the connection
    doc = sample(20)
    via_dag, via_cli = create_request(doc), create_request(doc)

    dag = serialized_dag("verify_household")
    run = dag.test(run_conf={"request_id": via_dag})
    assert run.state == "success"

    monkeypatch.setenv("HUB_AGENCIES_URL", agencies.url)
    assert main(["verify", via_cli, "--sync"]) == 0

    with session() as s:
        a, b = s.get(Request, via_dag), s.get(Request, via_cli)
        assert a.status == b.status == "published" and a.household_ref == b.household_ref
    facts = []
    for rid in (via_dag, via_cli):
        record, content = record_of_request(rid)
        facts.append((content["members"], content["division"], record.completeness))
    assert facts[0] == facts[1]
    from sqlalchemy import select

    from core.store import ValidationRun

    with session() as s:
        runs = {rid: s.scalars(select(ValidationRun.run_id).where(ValidationRun.request_id == rid)).all()
                for rid in (via_dag, via_cli)}
    # the household's rows, its members, and the checks across sources: each linked to the run that made it
    assert runs[via_dag] == [run.run_id] * 3
    assert len(runs[via_cli]) == 3 and len(set(runs[via_cli])) == 1 and runs[via_cli][0].startswith("inline:")
    assert agencies.stats()["household"]["served"] == 2


def test_dag_run_without_authorization_asks_no_agency_and_publishes_nothing(airflow_db, agencies, monkeypatch):
    from hub.stages.intake import create_request
    from core.store import ConsentDecision, HouseholdRecord, Request, session
    from sqlalchemy import select
    from tests.support.households import sample

    monkeypatch.setenv("AIRFLOW_CONN_AGENCY_HOUSEHOLD", f'{{"conn_type": "http", "host": "{agencies.base_url("household")}"}}')
    doc = sample(21)
    doc["authorization"] = None
    request_id = create_request(doc)
    run = serialized_dag("verify_household").test(run_conf={"request_id": request_id})
    assert run.state == "success"
    assert agencies.stats()["household"]["requests"] == 0
    with session() as s:
        assert s.get(Request, request_id).status == "refused"
        assert not s.scalars(select(HouseholdRecord).where(HouseholdRecord.request_id == request_id)).first()
        reasons = s.scalars(select(ConsentDecision.reason).where(ConsentDecision.request_id == request_id)).all()
    assert reasons and set(reasons) == {"NO_AUTHORIZATION"}
