"""The ledger_checkpoint DAG: wired as documented; dag.test() signs a checkpoint and verifies the ledger."""

from __future__ import annotations

import pytest

from tests.support.airflow import serialized_dag

pytestmark = pytest.mark.airflow


def test_ledger_checkpoint_structure(dagbag):
    dag = dagbag.dags["ledger_checkpoint"]
    assert set(dag.task_ids) == {"sign_checkpoint", "verify_ledger"}
    assert dag.get_task("verify_ledger").upstream_task_ids == {"sign_checkpoint"}
    assert dag.max_active_runs == 1 and "audit" in dag.tags


def test_ledger_checkpoint_dag_signs_and_verifies(airflow_db, agencies):
    from consent.tree import latest_checkpoint
    from hub.stages.intake import create_request
    from core.store import session
    from tests.support.households import sample

    create_request(sample(22))
    run = serialized_dag("ledger_checkpoint").test()
    assert run.state == "success"
    with session() as s:
        cp = latest_checkpoint(s)
        assert cp is not None and cp.size > 0
