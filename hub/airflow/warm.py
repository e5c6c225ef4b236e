"""Airflow's task processes start warm: the process they are forked from has GX imported and every suite planned.

A task of the hub's DAGs runs in a process of its own, forked (no new interpreter) from the process that takes the
task: under LocalExecutor an executor worker, itself forked from the scheduler when it starts; under CeleryExecutor a
process of the Celery worker's pool, itself forked from the worker. A task process that imports the hub's stages
and validates pays, each time, for importing GX, pandas and SQLAlchemy's models and for planning every suite (about
3.5 s of CPU on this machine, against some 20 s of work in a re-check task of 1,000 households): what the
benchmark's long-lived worker processes pay once. Done once in the process the tasks are forked from, it is in
every task process for nothing (the pages are shared, copy on write).

Airflow imports the module ``airflow_local_settings`` in each of its processes; the hub's is
hub/airflow/boot/airflow_local_settings.py (that folder is on the PYTHONPATH hub.airflow.env gives Airflow), and it
calls ``warm``. Only the processes that fork tasks load anything: the scheduler when its executor is LocalExecutor,
and a Celery worker; the API server, the DAG processor, the triggerer and the tasks themselves load nothing here.
Nothing depends on it: a task whose parent is cold loads what it needs itself.
"""

from __future__ import annotations

import sys
import time


def forks_tasks(argv: list[str], executor: str) -> bool:
    """Whether the Airflow process started with ``argv`` forks task processes, under ``executor`` ([core] executor:
    one class name or several, comma-separated)."""
    command = [a for a in argv[1:3] if not a.startswith("-")]
    if command[:1] == ["scheduler"]:
        return "LocalExecutor" in executor
    return command[:2] == ["celery", "worker"]


def warm(argv: list[str] | None = None, executor: str | None = None) -> bool:
    """In a process that forks tasks (``forks_tasks``), load what a task of the hub needs and plan every suite;
    whether it did. A failure is logged and leaves the process as it was: its tasks then start cold, as before."""
    if executor is None:
        from airflow.configuration import conf

        executor = conf.get("core", "executor", fallback="")
    if not forks_tasks(sys.argv if argv is None else argv, executor):
        return False
    t0 = time.perf_counter()
    try:
        import consent.decisions  # noqa: F401 - loaded for the tasks forked from this process
        import connectors.registry  # noqa: F401
        import core.store  # noqa: F401
        from schemas.parallel import plan_every_suite

        plan_every_suite()
    except Exception as exc:  # noqa: BLE001 - a cold task is slower, not wrong
        _say(f"the hub's task processes start cold: loading failed ({type(exc).__name__})")
        return False
    _say(f"the hub's task processes start warm: GX and every suite loaded in {time.perf_counter() - t0:.1f} s")
    return True


def _say(line: str) -> None:
    """One line on the process's standard error (its log): Airflow imports this before it configures logging."""
    print(f"hub.airflow.warm: {line}", file=sys.stderr, flush=True)
