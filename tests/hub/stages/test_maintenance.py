"""hub.stages.maintenance.purge_raw_data: every batch past its data life is purged, whatever its request's authorizations
and whatever waits ahead of it (on SQLite and PostgreSQL).

The batches here are fetched in 2001, and each purge is run at a moment of 2001, so the purge leaves the batches
of the other tests (fetched now) alone."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from consent.authorizations import store_authorization
from core.settings import settings
from core.crypto import keyring
from hub.stages.maintenance import purge_raw_data
from core.store import (
    FetchBatch,
    RawResponse,
    Request,
    SourceRow,
    aad_raw_response,
    aad_source_row,
    session,
)
from tests.support.households import sample
from tests.support.store import ledger_entries

T0 = dt.datetime(2001, 3, 1, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def _request(*, data_life_days: int | None = None, parent_id: str | None = None) -> str:
    """A stored request (a re-check of ``parent_id`` if given), with an authorization of ``data_life_days`` (as
    intake stores it, logged) or none."""
    doc = sample(3)
    request_id = uuid.uuid4().hex
    with session() as s:
        s.add(Request(id=request_id, department=doc["department"], purpose=doc["purpose"], case_ref="maintenance",
                      sources=["household"], status="failed", kind="recheck" if parent_id else "application",
                      parent_id=parent_id))
        s.flush()
        if data_life_days is not None:
            store_authorization(s, request_id=request_id, department=doc["department"], purpose=doc["purpose"],
                                case_ref="maintenance", doc={**doc["authorization"], "data_life_days": data_life_days},
                                keys=keyring())
    return request_id


def _batches(request_id: str, *fetched_at: dt.datetime) -> list[str]:
    """One fetched batch per moment, each with a raw answer and a row."""
    keys, ids = keyring(), []
    with session() as s:
        for at in fetched_at:
            batch_id = uuid.uuid4().hex
            s.add(FetchBatch(id=batch_id, request_id=request_id, source="household", status="complete", returned=1,
                             fetched_at=at))
            s.flush()
            s.add(RawResponse(batch_id=batch_id, seq=0, body_enc=keys.encrypt("{}", aad=aad_raw_response(batch_id, 0)),
                              sha256="0" * 64))
            s.add(SourceRow(batch_id=batch_id, row_no=0, data_enc=keys.encrypt("{}", aad=aad_source_row(batch_id, 0))))
            ids.append(batch_id)
    return ids


def _kept(batch_ids: list[str]) -> set[str]:
    """Of ``batch_ids``, those whose raw answers and rows are still there (and that are not marked purged)."""
    with session() as s:
        unpurged = set(s.scalars(select(FetchBatch.id).where(FetchBatch.id.in_(batch_ids),
                                                             FetchBatch.purged_at.is_(None))))
        with_rows = set(s.scalars(select(SourceRow.batch_id).where(SourceRow.batch_id.in_(batch_ids))))
        with_raw = set(s.scalars(select(RawResponse.batch_id).where(RawResponse.batch_id.in_(batch_ids))))
    assert with_rows == with_raw == unpurged, "a batch was purged only in part"
    return unpurged


def _purge_entries(batch_ids: list[str]) -> dict[str, list[dict]]:
    entries: dict[str, list[dict]] = {b: [] for b in batch_ids}
    for e in ledger_entries("data.purged"):
        if e["batch_id"] in entries:
            entries[e["batch_id"]].append(e)
    return entries


def test_batches_of_a_request_without_authorization_are_purged_after_the_default_data_life(database, monkeypatch):
    monkeypatch.delenv("HUB_DEFAULT_DATA_LIFE_DAYS", raising=False)
    assert settings().default_data_life_days == 30
    application = _request()  # stored without any authorization
    recheck = _request(parent_id=application)  # a re-check: its application's authorizations count, here none
    fetched = T0 + 100 * DAY
    batches = _batches(application, fetched) + _batches(recheck, fetched + DAY)

    purge_raw_data(fetched + 29 * DAY)
    assert _kept(batches) == set(batches)  # within the default 30 days: kept
    purge_raw_data(fetched + 30 * DAY)
    assert _kept(batches) == {batches[1]}  # the re-check's batch was fetched a day later
    purge_raw_data(fetched + 31 * DAY)
    assert not _kept(batches)

    entries = _purge_entries(batches)
    assert all(len(e) == 1 for e in entries.values())  # one ledger entry per batch
    for batch_id, request_id in zip(batches, (application, recheck)):
        (entry,) = entries[batch_id]
        assert entry["basis"] == "default" and entry["data_life_days"] == 30
        assert entry["request_id"] == request_id and entry["rows"] == entry["raw_answers"] == 1


def test_the_default_data_life_is_configurable(database, monkeypatch):
    monkeypatch.setenv("HUB_DEFAULT_DATA_LIFE_DAYS", "7")
    fetched = T0 + 150 * DAY
    batches = _batches(_request(), fetched)
    purge_raw_data(fetched + 6 * DAY)
    assert _kept(batches) == set(batches)
    purge_raw_data(fetched + 7 * DAY)
    assert not _kept(batches)
    (entry,) = _purge_entries(batches)[batches[0]]
    assert entry["basis"] == "default" and entry["data_life_days"] == 7
    for bad in ("0", "3651", "seven", "-1", "7.5"):
        monkeypatch.setenv("HUB_DEFAULT_DATA_LIFE_DAYS", bad)
        with pytest.raises(ValueError, match="HUB_DEFAULT_DATA_LIFE_DAYS"):
            settings().default_data_life_days


def test_a_recheck_is_purged_after_its_applications_data_life(database):
    application = _request(data_life_days=5)
    recheck = _request(parent_id=application)
    fetched = T0 + 200 * DAY
    batches = _batches(application, fetched) + _batches(recheck, fetched)
    purge_raw_data(fetched + 4 * DAY)
    assert _kept(batches) == set(batches)
    purge_raw_data(fetched + 5 * DAY)
    assert not _kept(batches)
    for (entry,) in _purge_entries(batches).values():
        assert entry["basis"] == "authorization" and entry["data_life_days"] == 5


def test_due_batches_behind_more_than_a_chunk_of_batches_not_yet_due_are_all_purged_in_one_call(database, monkeypatch):
    monkeypatch.delenv("HUB_DEFAULT_DATA_LIFE_DAYS", raising=False)
    kept_long = _request(data_life_days=3650)
    short = _request(data_life_days=1)
    no_authorization = _request()
    limit = 5
    older = _batches(kept_long, *(T0 + i * dt.timedelta(minutes=1) for i in range(2 * limit + 1)))
    due = (_batches(short, *(T0 + dt.timedelta(hours=1, minutes=i) for i in range(2 * limit + 2)))
           + _batches(no_authorization, T0 + dt.timedelta(hours=2)))
    newer = _batches(short, T0 + 40 * DAY)  # not due yet either

    result = purge_raw_data(T0 + 31 * DAY, limit=limit)
    assert not _kept(due)  # every due batch in this one call, in chunks of `limit`
    assert _kept(older) == set(older) and _kept(newer) == set(newer)
    assert result["batches"] >= len(due) and result["rows"] >= len(due) and result["raw_answers"] >= len(due)
    entries = _purge_entries(due + older)
    assert not any(entries[b] for b in older)
    assert [(e["basis"], e["data_life_days"]) for b in due for e in entries[b]] == \
        [("authorization", 1)] * (len(due) - 1) + [("default", 30)]

    assert purge_raw_data(T0 + 31 * DAY, limit=limit)["batches"] == 0  # nothing left that is due
    assert sum(len(v) for v in _purge_entries(due).values()) == len(due)  # purged once each


def test_the_due_condition_is_in_the_query_not_a_window_of_the_oldest(database):
    """With a chunk of one, the purge still reaches the only due batch behind many that are not due."""
    kept_long = _request(data_life_days=3650)
    older = _batches(kept_long, *(T0 + 300 * DAY + i * dt.timedelta(seconds=1) for i in range(3)))
    due = _batches(_request(data_life_days=2), T0 + 301 * DAY)
    purge_raw_data(T0 + 303 * DAY, limit=1)
    assert not _kept(due) and _kept(older) == set(older)
    with session() as s:
        assert s.scalar(select(func.count()).select_from(FetchBatch)
                        .where(FetchBatch.id.in_(older), FetchBatch.purged_at.is_not(None))) == 0
