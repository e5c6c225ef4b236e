"""Re-checks of current recipients, consent maintenance (expiry, purge, log retention) and sources' health."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest
from sqlalchemy import func, select

from consent.authorizations import revoke
from hub.stages.intake import create_request
from hub.stages.pipeline import run_inline
from hub.stages.records import load_record
from hub.stages.reverify import due_recipients, recheck_batch
from core.store import (Authorization, ConsentDecision, FetchBatch, LedgerEvent, RawResponse, Request,
                       SourceRow, session, utcnow)
from tests.support.households import applied as _applied, household_of as _household, sample

LATER = dt.timedelta(days=91)  # past the sample authorization's 90-day re-check interval, within its 180 days


def test_eligible_households_are_due_after_their_interval_and_others_never(agencies):
    eligible = _applied(_household("dibao"))
    ordinary = _applied(_household("ordinary", 3))  # households 1 and 2 receive grants in test_access
    assert eligible not in due_recipients()  # checked just now
    due = due_recipients(now=utcnow() + LATER)
    assert eligible in due and ordinary not in due
    assert eligible not in due_recipients(now=utcnow() + dt.timedelta(days=200))  # the authorization has expired


def test_a_recheck_runs_every_stage_again_under_the_applications_authorization(agencies):
    app_id = _applied(_household("dibao", 1))
    with session() as s:
        household = s.get(Request, app_id).household_ref
    before = load_record(household)[0].version
    served = agencies.stats()["tax"]["served"]
    summary = recheck_batch([app_id], run_id="nightly-1")
    assert summary == {"rechecked": 1, "published": 1, "changed": 0, "failed": 0, "refused": 0, "incomplete": 0,
                       "resumed": 0, "closed": 0, "busy": 0}
    record, content = load_record(household)
    assert record.version == before + 1 and agencies.stats()["tax"]["served"] == served + 1
    with session() as s:
        recheck = s.get(Request, record.request_id)
        assert (recheck.kind, recheck.parent_id, recheck.status) == ("recheck", app_id, "published")
        decisions = s.scalars(select(ConsentDecision).where(ConsentDecision.request_id == recheck.id)).all()
        assert decisions and all(d.allowed for d in decisions)  # the gate decided again, now
    assert recheck_batch([app_id], run_id="nightly-1")["published"] == 1  # a retried task resumes, adds nothing
    assert load_record(household)[0].version == before + 1
    # the next re-check falls due one interval after this one
    assert app_id not in due_recipients(now=utcnow() + dt.timedelta(days=60))


def test_a_revoked_authorization_stops_the_recheck(agencies):
    app_id = _applied(_household("dibao", 2))
    assert app_id in due_recipients(now=utcnow() + LATER)
    with session() as s:
        auth = s.scalars(select(Authorization).where(Authorization.request_id == app_id)).one()
        revoke(s, auth.id)
    assert app_id not in due_recipients(now=utcnow() + LATER)
    requests_before = agencies.stats()["household"]["requests"]
    summary = recheck_batch([app_id], run_id="after-revocation")  # selected before the revocation
    assert summary["refused"] == 1 and summary["published"] == 0
    assert agencies.stats()["household"]["requests"] == requests_before  # no agency was asked


def test_raw_data_past_its_life_is_purged_once_with_a_ledger_entry_and_records_stay(agencies):
    from hub.stages.maintenance import purge_raw_data

    app_id = _applied(15, sources=("household", "bank"))
    with session() as s:
        batches = [b.id for b in s.scalars(select(FetchBatch).where(FetchBatch.request_id == app_id))]
        household = s.get(Request, app_id).household_ref
    purge_raw_data(utcnow() + dt.timedelta(days=29))
    assert all(_rows(b) for b in batches)  # within its 30 days of data life: kept
    purged = purge_raw_data(utcnow() + dt.timedelta(days=31))
    assert purged["batches"] >= len(batches)
    with session() as s:
        for b in batches:
            assert not _rows(b) and s.get(FetchBatch, b).purged_at is not None
            assert not s.scalars(select(RawResponse).where(RawResponse.batch_id == b)).first()
        events = [e for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "data.purged"))
                  if e.payload["batch_id"] in batches]
        assert len(events) == len(batches) and all(e.payload["data_life_days"] == 30 for e in events)
    assert load_record(household)[1]["members"]  # the published record stays
    purge_raw_data(utcnow() + dt.timedelta(days=31))
    with session() as s:
        again = [e for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "data.purged"))
                 if e.payload["batch_id"] in batches]
    assert len(again) == len(batches)  # once per batch


def _rows(batch_id: str) -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(SourceRow).where(SourceRow.batch_id == batch_id))


def test_expired_authorizations_are_logged_once():
    from hub.stages.maintenance import expire_authorizations

    request_id = create_request(sample(17))
    later = utcnow() + dt.timedelta(days=400)
    assert expire_authorizations(later) >= 1
    assert expire_authorizations(later) == 0
    with session() as s:
        events = [e for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "authorization.expired"))
                  if e.payload["request_id"] == request_id]
    assert len(events) == 1


def test_logs_are_kept_at_least_six_months(tmp_path, monkeypatch):
    from hub.stages.maintenance import prune_logs

    old, recent = tmp_path / "a" / "old.log", tmp_path / "a" / "b" / "recent.log"
    recent.parent.mkdir(parents=True)
    for path, days in ((old, 200), (recent, 170)):
        path.write_text("x")
        stamp = time.time() - days * 86400
        os.utime(path, (stamp, stamp))
    monkeypatch.setenv("HUB_LOG_RETENTION_DAYS", "30")  # asks for less than the law allows: ignored
    assert prune_logs([tmp_path]) == 1
    assert not old.exists() and recent.exists()
    monkeypatch.setenv("HUB_LOG_RETENTION_DAYS", "365")
    stamp = time.time() - 200 * 86400
    os.utime(recent, (stamp, stamp))
    assert prune_logs([tmp_path]) == 0 and recent.exists()


def test_every_source_is_probed_with_a_query_naming_nobody(agencies):
    from hub.stages.health import latest_checks, probe_source

    from tests.support.households import ALL_SOURCES

    run_inline(create_request(sample(18)))
    for source in ALL_SOURCES:
        check = probe_source(source)
        assert check["ok"] and check["latency_ms"] is not None, source
    assert latest_checks()["household"].last_complete_fetch is not None
    assert all(agencies.stats()[s]["rows"] >= 0 for s in ALL_SOURCES)


def test_a_source_that_is_down_is_reported_with_its_failure():
    from agencies.server import AgencyServer
    from hub.stages.health import probe_source

    server = AgencyServer.from_hub_home(households=10, seed=7, faults="down:bank").start()
    try:
        check = probe_source("bank", base_url=server.base_url("bank"))
    finally:
        server.stop()
    assert check["ok"] is False and check["failure"] in ("UNREACHABLE", "CIRCUIT_OPEN", "DEADLINE")


def test_a_reported_grant_makes_a_household_a_recipient_and_its_end_stops_the_rechecks(agencies):
    from hub.services import assistance

    ordinary = _applied(_household("ordinary", 1))  # not eligible: no re-check on eligibility alone
    with session() as s:
        req = s.get(Request, ordinary)
        household, department = req.household_ref, req.department
    assert ordinary not in due_recipients(now=utcnow() + LATER)
    today = utcnow().date()
    assistance.report(household_ref=household, department=department, client_id="c", programme="dibao",
                      granted_from=today, granted_until=today + dt.timedelta(days=120), request_id=ordinary)
    assert ordinary in due_recipients(now=utcnow() + LATER)  # the department says it pays: re-check it
    eligible = _applied(_household("dibao", 3))
    with session() as s:
        req = s.get(Request, eligible)
    assistance.report(household_ref=req.household_ref, department=req.department, client_id="c", programme="dibao",
                      granted_from=today - dt.timedelta(days=400), granted_until=today - dt.timedelta(days=1))
    assert eligible not in due_recipients(now=utcnow() + LATER)  # the grant has ended: no longer a recipient


def test_every_current_recipient_can_be_rechecked_at_once(agencies):
    app = _applied(_household("dibao", 4))
    assert app not in due_recipients()  # checked just now
    assert app in due_recipients(every=True)  # e.g. after the standards changed


def test_a_recheck_batch_runs_with_the_collector_loosened_and_gives_it_back(agencies, monkeypatch):
    import gc
    import threading

    import pytest

    from hub.stages import pipeline, reverify

    app_id = _applied(_household("dibao", 3))
    before = gc.get_threshold()
    assert before != reverify.BATCH_GC_THRESHOLDS
    seen = []
    validate = pipeline.validate_batches
    monkeypatch.setattr(pipeline, "validate_batches", lambda *a, **k: seen.append(gc.get_threshold()) or validate(*a, **k))
    assert recheck_batch([app_id], run_id="gc-1")["published"] == 1
    assert seen == [reverify.BATCH_GC_THRESHOLDS] and gc.get_threshold() == before

    # nested and concurrent blocks share one setting; the first set is restored after the last, errors included
    inside, release = threading.Event(), threading.Event()

    def other():
        with reverify.batch_gc():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    with pytest.raises(RuntimeError):
        with reverify.batch_gc():
            t.start()
            assert inside.wait(10)
            with reverify.batch_gc():
                assert gc.get_threshold() == reverify.BATCH_GC_THRESHOLDS
            raise RuntimeError("a stage failed")
    assert gc.get_threshold() == reverify.BATCH_GC_THRESHOLDS  # the other block still runs
    release.set()
    t.join(10)
    assert gc.get_threshold() == before


def _plan(statement) -> str:
    """SQLite's query plan of ``statement`` in the test store."""
    from core.store import engine

    eng = engine()
    if eng.dialect.name != "sqlite":
        pytest.skip("the plans are SQLite's; PostgreSQL plans by its own statistics")
    sql = str(statement.compile(eng, compile_kwargs={"literal_binds": True}))
    with eng.connect() as c:
        return " | ".join(row[-1] for row in c.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


def test_a_batch_s_lookups_are_found_by_index_whatever_the_size_of_the_run_or_the_store():
    """Measured at 1,000,000 persons: the checks across sources already made in the night's run were looked up by
    run_id alone (every run of the night so far, 22 a household), and the unfinished re-checks by a scan of every
    request, both once a batch: a re-check slowed as it went."""
    from hub.stages.pipeline import checked_across_in_run
    from hub.stages.reverify import unfinished_rechecks

    plan = _plan(checked_across_in_run([f"r{i}" for i in range(500)], "scheduled__2026-12-05"))
    assert "ix_validation_runs_request_batch_run" in plan and "SCAN" not in plan, plan
    plan = _plan(unfinished_rechecks())
    assert "ix_requests_kind_status" in plan and "SCAN requests" not in plan, plan


def test_the_command_rechecks_in_the_dags_batches_and_adds_up_their_counts(monkeypatch, capsys):
    """`hub reverify --sync` re-checks what is due in batches of --batch-size (default the DAG's, RECHECK_BATCH),
    one run for all of them: a city's recipients in one batch would hold all their rows decrypted at once."""
    import json

    import hub.stages.reverify as stage
    from hub import cli
    from hub.airflow.schedules import RECHECK_BATCH

    apps = [f"app-{i}" for i in range(5)]
    calls: list[tuple[list[str], str]] = []

    def recheck(ids, *, run_id):
        calls.append((list(ids), run_id))
        return {"rechecked": len(ids), "published": len(ids) - 1, "failed": 1}

    monkeypatch.setattr(stage, "due_recipients", lambda **_: apps)
    monkeypatch.setattr(stage, "recheck_batch", recheck)
    monkeypatch.setattr(stage, "waiting_rechecks", lambda: [])
    assert cli.main(["reverify", "--sync", "--batch-size", "2"]) == 0
    assert [ids for ids, _ in calls] == [apps[:2], apps[2:4], apps[4:]]
    assert len({run_id for _, run_id in calls}) == 1
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (said["due"], said["rechecked"], said["published"], said["failed"]) == (5, 5, 2, 3)
    calls.clear()
    assert cli.main(["reverify", "--sync"]) == 0
    assert [ids for ids, _ in calls] == [apps] and RECHECK_BATCH >= len(apps)
    monkeypatch.setattr(stage, "due_recipients", lambda **_: [f"app-{i}" for i in range(RECHECK_BATCH + 1)])
    calls.clear()
    assert cli.main(["reverify", "--sync"]) == 0
    assert [len(ids) for ids, _ in calls] == [RECHECK_BATCH, 1]
    monkeypatch.setattr(stage, "due_recipients", lambda **_: [])  # nothing due: one empty batch, counts all there
    calls.clear()
    capsys.readouterr()
    assert cli.main(["reverify", "--sync"]) == 0
    assert [ids for ids, _ in calls] == [[]]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rechecked"] == 0
    for bad, said in (("0", "must be at least 1, not 0"), ("x", "not a whole number: 'x'")):
        with pytest.raises(SystemExit) as stopped:
            cli.main(["reverify", "--sync", "--batch-size", bad])
        assert stopped.value.code == 2 and said in capsys.readouterr().err


def test_each_recheck_batch_hands_its_freed_memory_back(agencies, monkeypatch):
    from hub.stages import reverify

    trims = []
    monkeypatch.setattr(reverify, "_malloc_trim", lambda: trims.append)
    app_id = _applied(_household("dibao", 4))
    assert recheck_batch([app_id], run_id="nightly-trim")["published"] == 1
    assert trims == [0]  # once, after the batch: glibc asked to return every free page it can
    recheck_batch(["no-such-application"], run_id="nightly-trim")  # a batch that fails gives its memory back too
    assert trims == [0, 0]


def test_memory_is_given_back_with_glibc_and_skipped_without_it(monkeypatch):
    from hub.stages import reverify

    reverify._malloc_trim.cache_clear()
    found = reverify._malloc_trim()
    assert reverify.give_back_memory() is (found is not None)
    if os.uname().sysname == "Linux" and os.confstr("CS_GNU_LIBC_VERSION"):
        assert found is not None  # this machine's libc is glibc: the call is made
    monkeypatch.setattr(reverify, "_malloc_trim", lambda: None)
    assert reverify.give_back_memory() is False


def test_a_recheck_s_id_sorts_by_when_it_was_made_and_every_attempt_in_its_run_finds_it(database, agencies,
                                                                                        monkeypatch):
    """A re-check's id begins with the time it was made, and its batches' ids with its own: what a re-check batch
    writes lands together at the end of each index keyed by them (with random ids, a 100,000-person re-check wrote
    26 GB for a store that grew by 5 GB). It is found again by its key (application and run), not by its id: an
    attempt made later in the same run (a retried task, a batch fetched household by household) finds the re-check
    an earlier one started, another run starts another, and two attempts at once cannot make two."""
    import re

    from sqlalchemy.exc import IntegrityError

    from core.ids import HEX32, time_prefix
    from hub.stages import reverify

    first, second = _applied(_household("dibao", 5)), _applied(_household("dibao", 6))
    monkeypatch.setattr(reverify, "time_prefix", lambda: "00000000000a")
    [a] = reverify.start_rechecks([first], "order-1")
    monkeypatch.setattr(reverify, "time_prefix", lambda: "00000000000b")
    b, again = reverify.start_rechecks([second, first], "order-1")
    assert again == a and a < b and all(re.fullmatch(HEX32, i) for i in (a, b))
    assert (a[:12], b[:12]) == ("00000000000a", "00000000000b")
    [c] = reverify.start_rechecks([first], "order-2")
    assert c not in (a, b) and c[:12] == "00000000000b"
    with session() as s:
        assert s.scalar(select(func.count()).select_from(Request).where(Request.parent_id == first)) == 2
        app = s.get(Request, first)
        key = reverify.recheck_key(first, "order-1")
        s.add(Request(id="00000000000c" + key, department=app.department, purpose=app.purpose, case_ref=app.case_ref,
                      sources=[], kind="recheck", parent_id=first, recheck_key=key))  # an attempt that missed a's
        with pytest.raises(IntegrityError):
            s.flush()
        s.rollback()
    reverify.release([a, b, c])

    # a whole re-check: its batches begin with its id, its exchanges with the time they were made
    monkeypatch.setattr(reverify, "time_prefix", time_prefix)
    made_after = time_prefix()
    assert recheck_batch([second], run_id="order-3")["published"] == 1
    with session() as s:
        recheck, sources = s.execute(select(Request.id, Request.sources).where(
            Request.parent_id == second, Request.status == "published")).one()
        batches = s.execute(select(FetchBatch.id, FetchBatch.source, FetchBatch.exchange_id)
                            .where(FetchBatch.request_id == recheck)).all()
    assert recheck[:12] >= made_after and {src for _, src, _ in batches} == set(sources)
    assert all(bid[:16] == recheck[:16] for bid, _, _ in batches), batches
    assert all(ex is not None and ex[:12] >= recheck[:12] for _, _, ex in batches), batches
