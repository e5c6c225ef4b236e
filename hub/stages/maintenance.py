"""Consent maintenance: authorizations that expired, raw data past its data life, logs past their retention.

- Expiry: each authorization that has expired is logged once (consent.authorizations.log_expirations).
- Purge: a fetch's raw answers and rows are deleted once the shortest ``data_life_days`` of the authorizations it
  was fetched under has passed, or HUB_DEFAULT_DATA_LIFE_DAYS (default 30) when there is none; one ledger entry
  per purged batch, naming the basis. A batch exchange's answers serve every household asked in it: they are
  deleted with the last of its batches, never while a batch still within its data life needs them. Published records, validation results and the ledger stay: they are the
  processing records (kept at least three years, PIPL Art. 56).
- Logs: the hub's and Airflow's log files are kept at least 180 days (Cybersecurity Law Art. 21); older ones are
  deleted. HUB_LOG_RETENTION_DAYS may lengthen the retention, never shorten it below 180.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from sqlalchemy import and_, case, delete, func, literal, or_, select, update

from consent import ledger
from consent.authorizations import log_expirations
from core.settings import settings
from core.store import (
    Authorization,
    ExchangeAnswer,
    FetchBatch,
    RawResponse,
    Request,
    SourceRow,
    UTCDateTime,
    session,
    utcnow,
)

log = logging.getLogger(__name__)


def expire_authorizations(now: dt.datetime | None = None) -> int:
    with session() as s:
        count = log_expirations(s, now or utcnow())
    log.info("authorizations expired and logged: %d", count)
    return count


def purge_raw_data(now: dt.datetime | None = None, *, limit: int = 10_000) -> dict:
    """Delete the raw answers and rows of every batch past its data life, ``limit`` batches per transaction;
    return counts.

    A batch's data life is the shortest ``data_life_days`` of the authorizations of its request (a re-check's: of
    its application); without any, HUB_DEFAULT_DATA_LIFE_DAYS. Only batches that are due are selected (the due
    condition is in SQL), oldest first by keyset, so batches not yet due never hold up those behind them."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    now = now or utcnow()
    default = settings().default_data_life_days
    with session() as s:  # the data lives in use: one cutoff each
        lives = set(s.scalars(select(Authorization.data_life_days).distinct())) | {default}
    purged = rows = answers = 0
    after: tuple[dt.datetime, str] | None = None
    while True:
        with session() as s:
            chunk = s.execute(_due_batches(now, lives, default, after).limit(limit)).all()
            for batch_id, request_id, source, fetched_at, authorized_life in chunk:
                # the row is claimed by the update, so a purge running at the same time logs it only once
                if not s.execute(update(FetchBatch).where(FetchBatch.id == batch_id, FetchBatch.purged_at.is_(None))
                                 .values(purged_at=now)).rowcount:
                    continue
                n_rows = s.execute(delete(SourceRow).where(SourceRow.batch_id == batch_id)).rowcount
                n_raw = s.execute(delete(RawResponse).where(RawResponse.batch_id == batch_id)).rowcount
                exchange_id = s.scalar(select(FetchBatch.exchange_id).where(FetchBatch.id == batch_id))
                if exchange_id is not None:
                    n_raw += _purge_exchange(s, exchange_id)
                basis = "default" if authorized_life is None else "authorization"
                days = default if authorized_life is None else authorized_life
                ledger.append(s, "data.purged", {"batch_id": batch_id, "request_id": request_id, "source": source,
                                                 "rows": n_rows, "raw_answers": n_raw, "data_life_days": days,
                                                 "basis": basis, "fetched_at": fetched_at.isoformat(),
                                                 **({"exchange_id": exchange_id} if exchange_id else {})}, at=now)
                purged, rows, answers = purged + 1, rows + n_rows, answers + n_raw
        if len(chunk) < limit:
            break
        after = (chunk[-1].fetched_at, chunk[-1].id)
    with session() as s:  # two purges at once, each the last but one of an exchange: the answers are still due
        answers += _purge_exchange(s, None)
    log.info("purged %d batches past their data life (%d rows, %d raw answers)", purged, rows, answers)
    return {"batches": purged, "rows": rows, "raw_answers": answers}


def _purge_exchange(s, exchange_id: str | None) -> int:
    """Delete the answers of exchange ``exchange_id`` (None: of every exchange) that no batch not yet purged needs;
    return how many."""
    needed = select(FetchBatch.id).where(FetchBatch.exchange_id == ExchangeAnswer.exchange_id,
                                         FetchBatch.purged_at.is_(None)).exists()
    query = delete(ExchangeAnswer).where(~needed)
    if exchange_id is not None:
        query = query.where(ExchangeAnswer.exchange_id == exchange_id)
    return s.execute(query.execution_options(synchronize_session=False)).rowcount


def _due_batches(now: dt.datetime, lives: set[int], default: int, after: tuple[dt.datetime, str] | None):
    """Unpurged batches whose data life (one of ``lives``) has passed at ``now``, oldest first, after the keyset
    ``after``: id, request_id, source, fetched_at and the authorizations' data life (None: there is no
    authorization, ``default`` applies)."""
    life = (select(Authorization.request_id.label("root_id"), func.min(Authorization.data_life_days).label("days"))
            .group_by(Authorization.request_id).subquery())
    root_id = func.coalesce(Request.parent_id, Request.id)
    # fetched_at <= now - life, with the cutoff of each data life in use computed here (portable date arithmetic)
    cutoff = {days: literal(now - dt.timedelta(days=days), UTCDateTime) for days in sorted(lives)}
    due = FetchBatch.fetched_at <= case(cutoff, value=func.coalesce(life.c.days, default))
    query = (select(FetchBatch.id, FetchBatch.request_id, FetchBatch.source, FetchBatch.fetched_at, life.c.days)
             .join(Request, Request.id == FetchBatch.request_id)
             .outerjoin(life, life.c.root_id == root_id)
             .where(FetchBatch.purged_at.is_(None), due)
             .order_by(FetchBatch.fetched_at, FetchBatch.id))
    if after is not None:
        query = query.where(or_(FetchBatch.fetched_at > after[0],
                                and_(FetchBatch.fetched_at == after[0], FetchBatch.id > after[1])))
    return query


def log_retention_days() -> int:
    """HUB_LOG_RETENTION_DAYS, never below 180 (core.settings)."""
    return settings().log_retention_days


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
    cfg = settings()
    return [cfg.airflow_home / "logs", cfg.home / "logs"]
