"""Alerts for staff: pipeline tasks that failed, written by the DAGs' failure callback (hub.airflow.tasks) and, for
stages run outside Airflow (``hub verify --sync``, the hub's own worker), by ``alert_on_failure``: the same record,
so the console's alerts page shows both."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from sqlalchemy import select

from consent import ledger
from core.store import Alert, session, utcnow

log = logging.getLogger(__name__)


def record_failure(*, dag_id: str, task_id: str, run_id: str, map_index: int, try_number: int, error: str) -> int:
    with session() as s:
        alert = Alert(dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index if map_index is not None
                      else -1, try_number=try_number or 1, error=error[:128])
        s.add(alert)
        s.flush()
        log.error("task %s.%s (run %s) failed: %s; alert %d", dag_id, task_id, run_id, error, alert.id)
        return alert.id


@contextmanager
def alert_on_failure(*, dag_id: str, task_id: str, run_id: str, ignore: tuple[type[BaseException], ...] = ()):
    """Around a stage run outside Airflow: when it raises (anything but ``ignore``), the alert a failed DAG task
    leaves (``dag_id`` and ``task_id`` name the DAG task the stage is), then the error goes on to the caller. Like
    the callback, it records the exception's class only: its text may quote data."""
    try:
        yield
    except ignore:
        raise
    except Exception as exc:
        try:
            record_failure(dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=-1, try_number=1,
                           error=type(exc).__name__)
        except Exception as failed:  # the store may be what failed: the stage's own error is the one to raise
            log.error("could not record the failure of %s.%s (run %s): %s", dag_id, task_id, run_id,
                      type(failed).__name__)
        raise


def open_alerts() -> list[Alert]:
    with session() as s:
        rows = s.scalars(select(Alert).where(Alert.acknowledged_at.is_(None)).order_by(Alert.id.desc())).all()
        s.expunge_all()
        return rows


def acknowledge(alert_id: int, client_id: str) -> bool:
    """Mark an open alert handled (a ledger entry names who); False when there is no such open alert."""
    with session() as s:
        alert = s.get(Alert, alert_id)
        if alert is None or alert.acknowledged_at is not None:
            return False
        alert.acknowledged_at = utcnow()
        ledger.append(s, "alert.acknowledged", {"alert_id": alert_id, "client_id": client_id, "dag_id": alert.dag_id,
                                                "task_id": alert.task_id})
        return True
