"""What the DAG files share: the agency connection of a source, the moment a run is about, and the failure callback
staff see.

Imported by DAG files at parse time, so it imports nothing heavy at module level (airflow.sdk is imported by every
DAG file anyway); the store is imported inside the failure callback, deliberately, for that reason."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Connection, get_current_context
from airflow.sdk.exceptions import AirflowNotFoundException


def agency(source: str) -> dict:
    """The agency's base URL (host) and credential (password) from the Airflow connection ``agency_<source>``."""
    try:
        conn = Connection.get(f"agency_{source}")
    except AirflowNotFoundException:
        return {}
    return {"base_url": conn.host or None, "secret": conn.password or None}


def run_as_of(context=None) -> dt.datetime:
    """The moment a DAG run is about, which its tasks pass to the stages as ``as_of``: the run's logical date, or,
    for a run that has none (in Airflow 3 a manual or asset-triggered run may not), the moment it was due to run
    (``run_after``). Never the task's clock: every task of a run, and every retry of one, gets the same moment.
    An aware UTC datetime (plain, not pendulum's)."""
    ctx = context if context is not None else get_current_context()
    run = ctx["dag_run"]
    moment = ctx.get("logical_date") or run.logical_date or run.run_after
    return dt.datetime.fromisoformat(moment.astimezone(dt.timezone.utc).isoformat())


def task_failed(context) -> None:
    """on_failure_callback: an alert row for staff (the console lists them) and a log line; never the exception's
    text, which may quote data."""
    from hub.airflow.alerts import record_failure  # the store: loaded when a task fails, not when a DAG is parsed

    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    record_failure(dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=getattr(ti, "map_index", -1),
                   try_number=getattr(ti, "try_number", 1), error=type(exc).__name__ if exc else "unknown")


RECORDS_ASSET = "hub://household-records"  # published household records (data-aware scheduling)
SOURCE_HEALTH_ASSET = "hub://source-health"
REVIEW_ASSET = "hub://assistance-review"  # a review run kept (hub.stages.review)


def default_args(*, retries: int = 2, retry_delay_s: int = 30, timeout_min: int = 15) -> dict:
    """Retries, a timeout and the failure callback, for every task of a DAG."""
    return {"retries": retries, "retry_delay": dt.timedelta(seconds=retry_delay_s),
            "execution_timeout": dt.timedelta(minutes=timeout_min), "on_failure_callback": task_failed}
