"""Airflow's task processes start warm (hub.airflow.warm): the process they are forked from, and only such a
process, has GX imported and every suite planned when Airflow has started it, and a fork of it has them too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hub.airflow.warm import forks_tasks


@pytest.mark.parametrize("argv, executor, forks", [
    (["airflow", "scheduler"], "LocalExecutor", True),
    (["airflow", "scheduler"], "CeleryExecutor", False),  # the Celery workers fork the tasks
    (["airflow", "scheduler"], "LocalExecutor,CeleryExecutor", True),
    (["airflow", "celery", "worker", "--queues", "hub"], "CeleryExecutor", True),
    (["airflow", "api-server", "--port", "8080"], "LocalExecutor", False),
    (["airflow", "dag-processor"], "LocalExecutor", False),
    (["airflow", "triggerer"], "LocalExecutor", False),
    (["airflow", "standalone"], "LocalExecutor", False),  # it starts a scheduler of its own, which warms
    (["airflow", "celery", "flower"], "CeleryExecutor", False),
    (["python", "-m", "pytest"], "LocalExecutor", False),
])
def test_only_a_process_that_forks_tasks_loads_anything(argv, executor, forks):
    assert forks_tasks(argv, executor) is forks


# Airflow started as `airflow <command>` (its settings import the hub's airflow_local_settings, found on the
# PYTHONPATH hub.airflow.env gives it); then, in a process forked from it as a task's is, what is already there.
_PROBE = """
import json, os, sys
sys.argv = ["airflow", *sys.argv[1:]]
import airflow  # noqa: F401 - Airflow's settings, and with them airflow_local_settings
def state():
    from schemas import suite
    return {"gx": "great_expectations" in sys.modules, "suites": sorted(suite._context.get("suites", {})),
            "plans": len(suite._plans)}
here = state()
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, json.dumps(state()).encode())
    os._exit(0)
os.waitpid(pid, 0)
print(json.dumps({"process": here, "fork": json.loads(os.read(read, 65536))}))
"""


def _started_as(*command: str, executor: str = "LocalExecutor") -> tuple[dict, str]:
    env = {**os.environ, "AIRFLOW__CORE__EXECUTOR": executor}
    done = subprocess.run([sys.executable, "-c", _PROBE, *command], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_the_scheduler_of_a_local_executor_loads_gx_and_plans_every_suite_and_its_forks_have_them():
    from schemas.contracts import SPECS
    from schemas.suite import SUITE_MODULES

    state, err = _started_as("scheduler")
    every = sorted(set(SPECS) | set(SUITE_MODULES))
    for process in ("process", "fork"):
        assert state[process]["gx"] and state[process]["suites"] == every and state[process]["plans"] >= len(every)
    assert "hub.airflow.warm: the hub's task processes start warm" in err


def test_the_api_server_and_a_scheduler_that_forks_no_task_load_nothing():
    for command, executor in ((("api-server",), "LocalExecutor"), (("scheduler",), "CeleryExecutor")):
        state, err = _started_as(*command, executor=executor)
        assert state["process"] == state["fork"] == {"gx": False, "suites": [], "plans": 0}
        assert "hub.airflow.warm" not in err
