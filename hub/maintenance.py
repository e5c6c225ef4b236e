"""Consent maintenance: authorizations that expired, raw data past its data life, logs past their retention.

- Expiry: each authorization that has expired is logged once (consent.authorizations.log_expirations).
- Purge: a fetch's raw answers and rows are deleted once the shortest ``data_life_days`` of the authorizations it
  was fetched under has passed; one ledger entry per purged batch. Published records, validation results and the
  ledger stay: they are the processing records (kept at least three years, PIPL Art. 56).
- Logs: the hub's and Airflow's log files are kept at least 180 days (Cybersecurity Law Art. 21); older ones are
  deleted. HUB_LOG_RETENTION_DAYS may lengthen the retention, never shorten it below 180.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

from sqlalchemy import delete, func, select

from consent import ledger
from consent.authorizations import log_expirations
from hub.store import Authorization, FetchBatch, RawResponse, Request, SourceRow, session, utcnow

log = logging.getLogger(__name__)

MIN_LOG_RETENTION_DAYS = 180


def expire_authorizations(now: dt.datetime | None = None) -> int:
    with session() as s:
        count = log_expirations(s, now or utcnow())
    log.info("authorizations expired and logged: %d", count)
    return count


def purge_raw_data(now: dt.datetime | None = None, *, limit: int = 10_000) -> dict:
    """Delete the raw answers and rows of batches past their data life; return counts."""
    now = now or utcnow()
    purged = rows = answers = 0
    with session() as s:
        batches = s.execute(
            select(FetchBatch, Request).join(Request, Request.id == FetchBatch.request_id)
            .where(FetchBatch.purged_at.is_(None)).order_by(FetchBatch.fetched_at).limit(limit)).all()
        for batch, req in batches:
            root = req.parent_id or req.id
            life = s.scalar(select(func.min(Authorization.data_life_days)).where(Authorization.request_id == root))
            if life is None or batch.fetched_at + dt.timedelta(days=life) > now:
                continue
            n_rows = s.execute(delete(SourceRow).where(SourceRow.batch_id == batch.id)).rowcount
            n_raw = s.execute(delete(RawResponse).where(RawResponse.batch_id == batch.id)).rowcount
            batch.purged_at = now
            ledger.append(s, "data.purged", {"batch_id": batch.id, "request_id": batch.request_id,
                                             "source": batch.source, "rows": n_rows, "raw_answers": n_raw,
                                             "data_life_days": life, "fetched_at": batch.fetched_at.isoformat()},
                          at=now)
            purged, rows, answers = purged + 1, rows + n_rows, answers + n_raw
    log.info("purged %d batches past their data life (%d rows, %d raw answers)", purged, rows, answers)
    return {"batches": purged, "rows": rows, "raw_answers": answers}


def log_retention_days() -> int:
    try:
        wanted = int(os.environ.get("HUB_LOG_RETENTION_DAYS", MIN_LOG_RETENTION_DAYS))
    except ValueError:
        wanted = MIN_LOG_RETENTION_DAYS
    return max(MIN_LOG_RETENTION_DAYS, wanted)


def prune_logs(roots: list[Path], now: dt.datetime | None = None) -> int:
    """Delete log files under ``roots`` older than the retention; return how many."""
    cutoff = (now or utcnow()).timestamp() - log_retention_days() * 86400
    removed = 0
    for root in roots:
        if not root.is_dir():
            continue
        for path in root.rglob("*.log"):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    log.info("log files older than %d days removed: %d", log_retention_days(), removed)
    return removed


def log_roots() -> list[Path]:
    from hub.config import settings

    cfg = settings()
    return [cfg.airflow_home / "logs", cfg.home / "logs"]
