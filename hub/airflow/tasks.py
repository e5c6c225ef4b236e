"""What the DAG files share: the agency connection of a source, and the failure callback staff see.

Imported by DAG files at parse time, so it imports nothing heavy at module level."""

from __future__ import annotations


def agency(source: str) -> dict:
    """The agency's base URL (host) and credential (password) from the Airflow connection ``agency_<source>``."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(f"agency_{source}")
    except AirflowNotFoundException:
        return {}
    return {"base_url": conn.host or None, "secret": conn.password or None}


def task_failed(context) -> None:
    """on_failure_callback: an alert row for staff (the console lists them) and a log line; never the exception's
    text, which may quote data."""
    from hub.airflow.alerts import record_failure

    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    record_failure(dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=getattr(ti, "map_index", -1),
                   try_number=getattr(ti, "try_number", 1), error=type(exc).__name__ if exc else "unknown")


RECORDS_ASSET = "hub://household-records"  # published household records (data-aware scheduling)
SOURCE_HEALTH_ASSET = "hub://source-health"


def default_args(*, retries: int = 2, retry_delay_s: int = 30, timeout_min: int = 15) -> dict:
    """Retries, a timeout and the failure callback, for every task of a DAG."""
    import datetime as dt

    return {"retries": retries, "retry_delay": dt.timedelta(seconds=retry_delay_s),
            "execution_timeout": dt.timedelta(minutes=timeout_min), "on_failure_callback": task_failed}
