"""Airflow fixtures: the DAGs folder parsed into a DagBag, a migrated metadata database, serialized DAGs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.airflow import DAGS, serialized_dag  # noqa: F401  (moved to tests/support)


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
