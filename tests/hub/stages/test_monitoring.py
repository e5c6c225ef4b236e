"""Whether anything watches the sources (hub.stages.health.monitoring), and the alert an inline run leaves when a
stage fails (hub.stages.pipeline.run_inline), the same record a failed DAG task leaves."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from core.store import Alert, SourceCheck, session, utcnow
from hub.airflow.schedules import PROBE_CRON, PROBE_EVERY, PROBE_GRACE
from hub.stages.health import monitoring, monitoring_status, scheduler_state
from hub.stages.intake import create_request
from hub.stages.pipeline import RequestNotFound, run_inline
from tests.support.console import REPO
from tests.support.households import sample
from tests.support.store import tampering

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
FRESH = NOW - PROBE_EVERY
LATE = NOW - PROBE_EVERY - PROBE_GRACE - dt.timedelta(minutes=1)


def test_every_source_probed_within_its_schedule_and_a_scheduler_that_answers_is_ok():
    m = monitoring_status({"tax": FRESH, "bank": FRESH}, now=NOW, scheduler="reachable")
    assert (m.level, m.stale, m.latest) == ("ok", (), FRESH)


def test_a_late_or_missing_probe_is_amber_and_named():
    m = monitoring_status({"tax": FRESH, "bank": LATE, "securities": None}, now=NOW, scheduler="reachable")
    assert m.level == "amber" and m.stale == ("bank", "securities") and m.latest == FRESH
    assert m.stale_after == PROBE_EVERY + PROBE_GRACE


def test_nothing_probed_in_time_is_red_whatever_the_scheduler_says():
    for scheduler in ("reachable", "none"):
        m = monitoring_status({"tax": LATE, "bank": None}, now=NOW, scheduler=scheduler)
        assert m.level == "red" and m.stale == ("tax", "bank"), scheduler


def test_an_unreachable_scheduler_is_red_and_no_scheduler_is_at_least_amber():
    assert monitoring_status({"tax": FRESH}, now=NOW, scheduler="unreachable").level == "red"
    m = monitoring_status({"tax": FRESH}, now=NOW, scheduler="none")
    assert m.level == "amber" and m.stale == ()
    with pytest.raises(ValueError):
        monitoring_status({}, now=NOW, scheduler="maybe")


def test_the_dag_and_the_pages_share_the_probe_schedule():
    dag_file = (REPO / "dags" / "source_health.py").read_text(encoding="utf-8")
    assert "schedule=PROBE_CRON" in dag_file  # parsed by Airflow, so read here, not imported
    assert PROBE_CRON == f"*/{int(PROBE_EVERY.total_seconds() // 60)} * * * *"


def test_the_scheduler_is_none_without_an_airflow_url_and_unreachable_when_it_does_not_answer(monkeypatch):
    monkeypatch.delenv("HUB_AIRFLOW_URL", raising=False)
    assert scheduler_state() == "none"
    monkeypatch.setenv("HUB_AIRFLOW_URL", "http://127.0.0.1:9/")  # nothing listens there
    assert scheduler_state() == "unreachable"


def test_monitoring_reads_the_latest_probe_of_every_source(monkeypatch):
    monkeypatch.delenv("HUB_AIRFLOW_URL", raising=False)
    with session() as s:
        s.add(SourceCheck(source="tax", ok=True, latency_ms=3.0, checked_at=utcnow()))
    m = monitoring()
    assert m.scheduler == "none" and m.level in ("amber", "red")
    assert "tax" not in m.stale and m.last_probe["tax"] is not None
    assert set(m.last_probe) >= {"household", "bank"}


def test_an_inline_run_whose_stage_fails_leaves_the_alert_a_failed_dag_task_would(own_store, agencies):
    doc = sample(21)
    request_id = create_request(doc)
    # the store in a state only tampering reaches: one member's ID number sealed for another row, so it cannot be
    # opened (AES-GCM binds each value to its row) and the fetch stage fails
    with tampering() as c:
        encs = c.execute(text("SELECT id, id_number_enc FROM request_members WHERE request_id = :r ORDER BY id"),
                         {"r": request_id}).all()
        assert len(encs) >= 2
        c.execute(text("UPDATE request_members SET id_number_enc = :e WHERE id = :i"),
                  {"e": encs[1][1], "i": encs[0][0]})
    with session() as s:
        before = s.scalar(select(Alert.id).order_by(Alert.id.desc()).limit(1)) or 0
    with pytest.raises(Exception) as raised:
        run_inline(request_id)
    with session() as s:
        new = s.scalars(select(Alert).where(Alert.id > before)).all()
    assert [(a.dag_id, a.task_id, a.error, a.acknowledged_at) for a in new] == [
        ("verify_household", "fetch_source", type(raised.value).__name__, None)]
    assert new[0].run_id.startswith("inline:")
    assert all(m["id_number"] not in new[0].error and m["name"] not in new[0].error for m in doc["members"])


def test_an_unknown_request_is_the_callers_mistake_and_raises_no_alert():
    with session() as s:
        before = s.scalar(select(Alert.id).order_by(Alert.id.desc()).limit(1)) or 0
    with pytest.raises(RequestNotFound):
        run_inline("no-such-request")
    with session() as s:
        assert s.scalars(select(Alert).where(Alert.id > before)).all() == []
