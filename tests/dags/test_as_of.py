"""Every DAG hands its run's logical date to the stages as ``as_of`` (a run without one, as Airflow 3 makes manual and
asset-triggered runs: the moment it was due to run), never the task's clock: the tasks' code called under a run's
context with the stages stood in for, and a dag.test() run whose record is stamped with its logical date."""

from __future__ import annotations

import datetime as dt
import importlib
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from tests.support.airflow import serialized_dag

pytestmark = pytest.mark.airflow

LOGICAL = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.timezone.utc)
TRIGGERED = dt.datetime(2026, 12, 1, 9, 30, 15, tzinfo=dt.timezone.utc)


@contextmanager
def run_context(logical_date: dt.datetime | None, run_after: dt.datetime = TRIGGERED):
    """The context a task of a run gets (what the tasks read of it): ``logical_date`` is left out when the run has
    none, as the Task SDK does."""
    from airflow.sdk.execution_time.context import set_current_context

    run = SimpleNamespace(logical_date=logical_date, run_after=run_after, run_id="scheduled__as_of")
    ctx = {"dag_run": run, "run_id": run.run_id, **({"logical_date": logical_date} if logical_date else {})}
    with set_current_context(ctx):
        yield ctx


def _stand_in(monkeypatch, module: str, *names: str, returns=None) -> dict[str, tuple]:
    """Replace stages ``names`` of ``module`` (the tasks import them when they run); returns what each was called
    with."""
    calls: dict[str, tuple] = {}
    mod = importlib.import_module(module)
    for name in names:
        def stage(*args, _name=name, **kwargs):
            calls[_name] = (args, kwargs)
            return [] if returns is None else returns
        monkeypatch.setattr(mod, name, stage)
    return calls


def _callable(dagbag, dag_id: str, task_id: str):
    return dagbag.dags[dag_id].get_task(task_id).python_callable


def test_run_as_of_is_the_logical_date_else_when_the_run_was_due():
    import pendulum

    from hub.airflow.tasks import run_as_of

    with run_context(pendulum.instance(LOGICAL)) as ctx:
        moment = run_as_of()
        assert run_as_of(ctx) == moment
    assert moment == LOGICAL and type(moment) is dt.datetime and moment.tzinfo is not None
    with run_context(None) as ctx:  # a manual run in Airflow 3 may have no logical date
        assert run_as_of(ctx) == TRIGGERED
    beijing = dt.timezone(dt.timedelta(hours=8))
    with run_context(LOGICAL.astimezone(beijing)) as ctx:
        assert run_as_of(ctx) == LOGICAL and run_as_of(ctx).utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("logical, expected", [(LOGICAL, LOGICAL), (None, TRIGGERED)], ids=["scheduled", "manual"])
def test_the_tasks_pass_the_runs_moment_to_the_stages(dagbag, monkeypatch, logical, expected):
    records = _stand_in(monkeypatch, "hub.stages.records", "publish_record", returns=1)
    reverify = _stand_in(monkeypatch, "hub.stages.reverify", "due_recipients", "recheck_batch")
    maintenance = _stand_in(monkeypatch, "hub.stages.maintenance", "expire_authorizations", "purge_raw_data",
                            "prune_logs", returns=0)
    with run_context(logical):
        _callable(dagbag, "verify_household", "publish_record")({}, params={"request_id": "r1"})
        _callable(dagbag, "reverify_recipients", "select_due")(
            params={"application_ids": [], "limit": 0, "every": False, "batch_size": 50})
        _callable(dagbag, "reverify_recipients", "recheck_batch")(["a1", "a2"])
        _callable(dagbag, "consent_maintenance", "expire_authorizations")()
        _callable(dagbag, "consent_maintenance", "purge_raw_data")(0)
        _callable(dagbag, "consent_maintenance", "prune_logs")({})
    assert records["publish_record"] == (("r1",), {"as_of": expected})
    assert reverify["due_recipients"][1]["now"] == expected
    assert reverify["recheck_batch"] == ((["a1", "a2"],), {"run_id": "scheduled__as_of", "as_of": expected})
    assert maintenance["expire_authorizations"][0] == (expected,)
    assert maintenance["purge_raw_data"][0] == (expected,)
    assert maintenance["prune_logs"][0][1] == expected


def test_a_dag_run_stamps_its_record_with_its_logical_date(airflow_db, agencies, monkeypatch):
    from core.store import utcnow
    from hub.stages.intake import create_request
    from hub.stages.records import record_of_request
    from tests.support.households import sample

    monkeypatch.setenv("AIRFLOW_CONN_AGENCY_HOUSEHOLD", f'{{"conn_type": "http", "host": "{agencies.base_url("household")}"}}')
    request_id = create_request(sample(2, sources=["household"]))
    logical = (utcnow() - dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    run = serialized_dag("verify_household").test(logical_date=logical, run_conf={"request_id": request_id})
    assert run.state == "success"
    record, content = record_of_request(request_id)
    assert record.as_of == logical and content["as_of"] == logical.isoformat()
    assert record.recorded_at > logical  # the transaction time is when it was published


@pytest.mark.parametrize("logical, expected", [(LOGICAL, LOGICAL), (None, TRIGGERED)], ids=["scheduled", "manual"])
def test_the_review_reviews_the_runs_day_in_beijing_or_the_day_asked(dagbag, monkeypatch, logical, expected):
    import hub.stages.review as review

    asked = []
    monkeypatch.setattr(review, "run_review", lambda day, residents=None: asked.append(day) or {"day": str(day)})
    task = _callable(dagbag, "assistance_review", "review")
    with run_context(logical):
        task(params={"as_of": None})
        task(params={"as_of": "2026-06-30"})
    beijing = expected.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    assert asked == [beijing, dt.date(2026, 6, 30)]
    assert beijing != expected.date() or expected.hour < 16  # 02:00 UTC is still that day in Beijing
