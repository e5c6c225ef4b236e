"""The operations DAGs (reverify_recipients, consent_maintenance, source_health, ledger_checkpoint's schedule):
wired as documented, run end to end with dag.test(), and a failing task leaves an alert for staff."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.airflow import serialized_dag

pytestmark = pytest.mark.airflow


def test_structure_of_the_operations_dags(dagbag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    from hub.airflow.schedules import RECHECK_BATCH

    r = dagbag.dags["reverify_recipients"]
    assert set(r.task_ids) == {"select_due", "recheck_batch", "summarize", "notify_departments"}
    assert r.params["batch_size"] == RECHECK_BATCH  # the batches `hub reverify --sync` and the benchmark run
    assert r.get_task("notify_departments").upstream_task_ids == {"summarize"}
    n = dagbag.dags["notify_departments"]
    assert n.get_task("deliver").upstream_task_ids == {"fan_out"}
    assert r.get_task("recheck_batch").upstream_task_ids == {"select_due"}
    assert r.get_task("summarize").upstream_task_ids == {"recheck_batch"}
    assert isinstance(r.get_task("recheck_batch"), MappedOperator)
    c = dagbag.dags["consent_maintenance"]
    assert c.get_task("prune_logs").upstream_task_ids == {"purge_raw_data"}
    assert c.get_task("purge_raw_data").upstream_task_ids == {"expire_authorizations"}
    h = dagbag.dags["source_health"]
    assert isinstance(h.get_task("probe_source"), MappedOperator)
    for dag in dagbag.dags.values():  # what staff read in the UI, and what keeps a stuck task from hanging forever
        assert dag.doc_md and dag.description and "hub" in dag.tags, dag.dag_id
        for task in dag.tasks:
            assert task.execution_timeout is not None and task.on_failure_callback, (dag.dag_id, task.task_id)


def test_published_records_are_an_asset_that_schedules_the_ledger_checkpoint(dagbag):
    from hub.airflow.tasks import RECORDS_ASSET

    producers = {(d.dag_id, t.task_id) for d in dagbag.dags.values() for t in d.tasks
                 if any(getattr(o, "name", None) == RECORDS_ASSET for o in t.outlets)}
    assert producers == {("verify_household", "publish_record"), ("reverify_recipients", "recheck_batch")}
    timetable = dagbag.dags["ledger_checkpoint"].timetable
    assert RECORDS_ASSET in str(timetable.asset_condition) and "*/10" in str(timetable.timetable)


def test_reverify_dag_rechecks_the_chosen_applications_in_mapped_batches(airflow_db, agencies):
    from hub.stages.intake import create_request
    from hub.stages.pipeline import run_inline
    from core.store import Request, session
    from tests.support.households import sample

    apps = [create_request(sample(k)) for k in (23, 25)]
    for a in apps:
        run_inline(a)
    run = serialized_dag("reverify_recipients").test(run_conf={"application_ids": apps, "batch_size": 1})
    assert run.state == "success"
    with session() as s:
        rechecks = s.scalars(select(Request).where(Request.parent_id.in_(apps))).all()
    assert sorted(r.parent_id for r in rechecks) == sorted(apps)
    assert all(r.kind == "recheck" and r.status == "published" for r in rechecks)


def test_consent_maintenance_dag_runs(airflow_db):
    assert serialized_dag("consent_maintenance").test().state == "success"


def test_source_health_dag_probes_every_source(airflow_db, agencies):
    from hub.stages.health import latest_checks

    assert serialized_dag("source_health").test().state == "success"
    checks = latest_checks()
    assert len(checks) == 11 and all(c.ok for c in checks.values())


def test_a_failing_task_leaves_an_alert_staff_see(airflow_db, monkeypatch):
    from hub.airflow.alerts import open_alerts

    monkeypatch.setenv("HUB_AGENCIES_URL", "http://127.0.0.1:9/")  # no agency answers
    before = {a.id for a in open_alerts()}
    run = serialized_dag("source_health").test()
    assert run.state == "failed"
    new = [a for a in open_alerts() if a.id not in before]
    assert [(a.dag_id, a.task_id, a.error) for a in new] == [("source_health", "summarize", "RuntimeError")]
