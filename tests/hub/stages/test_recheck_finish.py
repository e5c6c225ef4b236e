"""Re-checks finish (hub.stages.reverify): a household whose re-check came back incomplete because an agency was out is
due again with back-off until a complete re-check lands, staff see who waits and since when, its record keeps what
was last known whole next to what is missing; and a re-check whose process was killed is resumed or closed, never
left running."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.store import (
    ExchangeAnswer,
    FetchBatch,
    HouseholdRecord,
    LedgerEvent,
    Request,
    RequestMember,
    SourceRow,
    session,
    utcnow,
)
from hub.services.clients import create_client
from hub.stages.pipeline import replay_batch
from hub.stages.records import load_record
from hub.stages.reverify import backoff, due_recipients, recheck_batch, recover, waiting_rechecks
from hub.web.app import create_app
from tests.support.households import ALL_SOURCES, applied, household_of
from tests.support.servers import serve_agencies


@pytest.fixture(autouse=True)
def _own(own_store):
    """Each test counts what the whole store waits for: a store of its own."""


def test_the_backoff_is_the_next_run_then_hours_capped_at_a_day():
    assert [backoff(n) for n in range(1, 7)] == [dt.timedelta(0), dt.timedelta(hours=1), dt.timedelta(hours=4),
                                                dt.timedelta(hours=16), dt.timedelta(hours=24),
                                                dt.timedelta(hours=24)]


def _outage(source: str):
    """The agencies with ``source`` refusing connections, pointed at by HUB_AGENCIES_URL while the context lasts."""
    from contextlib import contextmanager

    @contextmanager
    def ctx():
        gen = serve_agencies(f"down:{source}")
        next(gen)
        try:
            yield
        finally:
            gen.close()
    return ctx()


def _versions(household_ref: str) -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(HouseholdRecord)
                        .where(HouseholdRecord.household_ref == household_ref))


def test_an_incomplete_recheck_is_due_again_with_backoff_until_a_complete_one_lands(agencies):
    app_id = applied(household_of("dibao"), ALL_SOURCES)
    with session() as s:
        household = s.get(Request, app_id).household_ref
    first_version = load_record(household)[0].version
    assert app_id not in due_recipients()  # checked just now: due only after 90 days

    with _outage("bank"):
        summary = recheck_batch([app_id], run_id="outage-1")
    assert summary["published"] == 1 and summary["incomplete"] == 1
    record, content = load_record(household)
    assert record.completeness["bank"] == "unavailable"
    # what was last known whole stays next to what is missing
    last = content["sources"]["bank"]["last_complete"]
    assert last["record_version"] == first_version and last["batch_id"] and last["response_sha256"]
    assert "last_complete" not in content["sources"]["tax"]  # complete now: nothing to fall back on

    [waiting] = waiting_rechecks()
    assert waiting.application_id == app_id and waiting.attempts == 1 and waiting.household_ref == household
    assert any(r.startswith("bank:") for r in waiting.reasons)
    assert app_id in due_recipients()  # at once: the next run takes it again

    with _outage("bank"):
        recheck_batch([app_id], run_id="outage-2")
    [waiting] = waiting_rechecks()
    assert waiting.attempts == 2 and waiting.next_due - waiting.last == dt.timedelta(hours=1)
    assert app_id not in due_recipients()  # backing off
    assert app_id in due_recipients(now=utcnow() + dt.timedelta(minutes=61))

    summary = recheck_batch([app_id], run_id="recovered")  # the agency is back
    assert summary["incomplete"] == 0 and waiting_rechecks() == []
    assert app_id not in due_recipients(now=utcnow() + dt.timedelta(days=1))  # a complete check: the interval again
    assert _versions(household) == first_version + 3


def test_consent_is_not_an_outage(agencies):
    """A source refused because a member did not authorize it is not cured by asking again: not waiting."""
    from consent.authorizations import revoke
    from core.store import Authorization, RequestMember

    app_id = applied(household_of("dibao", 1), ALL_SOURCES)
    with session() as s:
        auth = s.scalars(select(Authorization).where(Authorization.request_id == app_id)).first()
        ref = s.scalars(select(RequestMember.person_ref).where(RequestMember.request_id == app_id)).first()
        revoke(s, auth.id, person_ref=ref, source="tax")
    recheck_batch([app_id], run_id="consent-1")
    assert waiting_rechecks() == []


def test_staff_see_who_waits_in_the_api_and_on_the_sources_page(agencies):
    app_id = applied(household_of("dibao"), ALL_SOURCES)
    with _outage("real_estate"):
        recheck_batch([app_id], run_id="outage-staff")
    _, staff = create_client("staff user", "staff")
    _, caseworker = create_client("caseworker", "department", "MZ-210302")
    api = TestClient(create_app())
    resp = api.get("/v1/rechecks/waiting", headers={"Authorization": f"Bearer {staff}"})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["count"] == 1 and doc["since"] and doc["items"][0]["application_id"] == app_id
    assert doc["items"][0]["attempts"] == 1 and "real_estate:" in doc["items"][0]["reasons"][0]
    assert api.get("/v1/rechecks/waiting", headers={"Authorization": f"Bearer {caseworker}"}).status_code == 403

    for lang, title, reason in (("zh-CN", "等待完整复核的家庭", "不动产: 无法连接"),
                                ("en", "waiting for a complete re-check", ": unreachable")):
        c = TestClient(create_app(), base_url="http://127.0.0.1:8000", follow_redirects=False)
        assert c.post("/console/login", data={"token": staff}).status_code == 303
        html = c.get(f"/console/sources?lang={lang}").text
        assert title in html and 'id="rechecks-waiting-count">1<' in html and app_id[:12] in html
        assert reason in html  # the source and the reason in the reader's language, no raw code


def _unfinished() -> list[tuple[str, str]]:
    with session() as s:
        return s.execute(select(Request.id, Request.status).where(
            Request.kind == "recheck", Request.status.in_(("received", "running")))).all()


def test_a_recheck_killed_inside_a_batch_exchange_is_resumed_and_loses_and_duplicates_nothing(agencies, tmp_path):
    apps = [applied(household_of("dibao", i), ("household", "tax", "bank")) for i in range(3)]
    with session() as s:
        households = [s.get(Request, a).household_ref for a in apps]
        persons = s.scalar(select(func.count()).select_from(RequestMember).where(RequestMember.request_id.in_(apps)))
    before = [_versions(h) for h in households]
    slow = serve_agencies("latency:400")  # each call slow enough to kill the run in the middle
    server = next(slow)
    in_flight = threading.Event()

    def exchanging(ids, page):  # the bank's exchange for all three households is at the agency: kill now
        if len(ids) == persons:
            in_flight.set()
            time.sleep(5)

    server.agencies["bank"].on_query = exchanging
    try:
        code = ("import sys; from hub.stages.reverify import recheck_batch; "
                f"recheck_batch({apps!r}, run_id='killed')")
        proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        assert in_flight.wait(60), "the batch exchange never reached the agency"
        assert _unfinished(), "the re-check never started"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        slow.close()
    left = _unfinished()
    assert left  # the killed run left its re-checks running: what the next run must deal with

    summary = recheck_batch(apps, run_id="after-kill")  # on the same host: the dead worker is seen at once
    assert summary["resumed"] == len(left) and summary["published"] == len(apps)
    assert _unfinished() == []
    assert [_versions(h) for h in households] == [b + 1 for b in before]  # one new version each
    with session() as s:
        resumed = s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "recheck.resumed")).all()
        rechecks = s.scalars(select(Request.id).where(Request.kind == "recheck")).all()
        batches = s.scalars(select(FetchBatch).where(FetchBatch.request_id.in_(rechecks))).all()
        exchanges = {a.exchange_id for a in s.scalars(select(ExchangeAnswer))}
        completed = Counter(e.payload["batch_id"] for e in s.scalars(
            select(LedgerEvent).where(LedgerEvent.kind == "fetch.completed")))
    assert len(resumed) == len(left)
    # one batch per re-check and source, each from an exchange whose answers are kept once, each logged once
    assert sorted((b.request_id, b.source) for b in batches) == sorted(
        (r, source) for r in rechecks for source in ("household", "tax", "bank"))
    assert all(b.exchange_id in exchanges and completed[b.id] == 1 for b in batches)
    assert exchanges == {b.exchange_id for b in batches}  # no answers of an exchange nobody stored
    for b in batches:
        with session() as s:
            stored = s.scalar(select(func.count()).select_from(SourceRow).where(SourceRow.batch_id == b.id))
        assert len(replay_batch(b.id)) == stored


def test_a_lapsed_lease_of_another_host_is_closed_and_a_live_one_left_alone(agencies):
    app_id = applied(household_of("dibao"), ("household",))
    other = applied(household_of("dibao", 1), ("household",))
    now = utcnow()
    with session() as s:
        app = s.get(Request, app_id)
        for rid, parent, owner, until in (("a" * 32, other, "elsewhere:1:1", now - dt.timedelta(seconds=1)),
                                          ("b" * 32, app_id, "elsewhere:2:2", now + dt.timedelta(hours=1))):
            s.add(Request(id=rid, department=app.department, purpose=app.purpose, case_ref=app.case_ref,
                          sources=["household"], status="running", kind="recheck", parent_id=parent,
                          lease_owner=owner, lease_until=until))
    adopted, busy, closed = recover([app_id])
    assert adopted == {} and busy == {app_id} and closed == 1  # the other host's live lease is its own
    with session() as s:
        assert s.get(Request, "a" * 32).status == "failed" and s.get(Request, "b" * 32).status == "running"
        assert s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "recheck.closed")).first() is not None
    assert recheck_batch([app_id], run_id="two-at-once")["busy"] == 1  # not re-checked twice at once
