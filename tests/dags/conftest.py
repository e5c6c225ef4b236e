"""Airflow fixtures: the DAGs folder parsed into a DagBag, a migrated metadata database, serialized DAGs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.airflow.env import REPO_ROOT

DAGS = REPO_ROOT / "dags"


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated Airflow metadata database in this session's AIRFLOW_HOME."""
    airflow = Path(sys.executable).parent / "airflow"
    out = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


def serialized_dag(dag_id: str):
    """Sync the dags-folder bundle to the metadata database (dag.test() needs the DAG serialized)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    bundle = manager.get_bundle("dags-folder")
    bundle.initialize()
    bag = BundleDagBag(dag_folder=str(bundle.path), bundle_path=bundle.path, bundle_name=bundle.name)
    sync_bag_to_db(bag, bundle.name, bundle.version)
    return bag.get_dag(dag_id)
