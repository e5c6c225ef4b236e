"""Alerts for staff: pipeline tasks that failed (written by the DAGs' failure callback)."""

from __future__ import annotations

import logging

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
