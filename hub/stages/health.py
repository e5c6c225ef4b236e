"""Sources' health for staff: each agency probed with an empty query (no person named, so no consent is
involved), and each source's freshness (its last complete fetch)."""

from __future__ import annotations

import logging

import requests
from sqlalchemy import Integer, func, select

from core.settings import settings
from core.store import FetchBatch, QuarantinedRow, SourceCheck, ValidationRun, session
from hub.federation import sources
from schemas.contracts import SPECS

log = logging.getLogger(__name__)


def probe_source(source: str, *, base_url: str | None = None, secret: str | None = None) -> dict:
    try:
        base = base_url or sources.base_url(source, settings().agencies_url)
    except (requests.RequestException, LookupError, ValueError):  # nowhere to find the agency: it is not reachable
        ok, latency_ms, failure = False, None, "UNREACHABLE"
    else:
        ok, latency_ms, failure = sources.connector(source, base, secret).probe()
    with session() as s:
        fresh = s.scalar(select(func.max(FetchBatch.fetched_at)).where(FetchBatch.source == source,
                                                                        FetchBatch.status == "complete"))
        s.add(SourceCheck(source=source, ok=ok, latency_ms=latency_ms, failure=failure, last_complete_fetch=fresh))
    log.info("source %s: %s in %.0f ms", source, "up" if ok else f"DOWN ({failure})", latency_ms or 0)
    return {"source": source, "ok": ok, "latency_ms": latency_ms, "failure": failure,
            "last_complete_fetch": fresh.isoformat() if fresh else None}


def latest_checks() -> dict[str, SourceCheck]:
    """Each source's latest check (one row per source, however many probes are stored)."""
    with session() as s:
        latest = select(func.max(SourceCheck.id)).group_by(SourceCheck.source)
        rows = s.scalars(select(SourceCheck).where(SourceCheck.id.in_(latest))).all()
        s.expunge_all()
    return {r.source: r for r in rows}


def overview(since) -> list[dict]:
    """Per source, for staff: the latest probe, freshness (last complete fetch), and since ``since`` the validation
    runs, their pass rate and the rows quarantined."""
    checks = latest_checks()
    with session() as s:
        fresh = dict(s.execute(select(FetchBatch.source, func.max(FetchBatch.fetched_at))
                               .where(FetchBatch.status == "complete").group_by(FetchBatch.source)).all())
        runs = {src: (n, ok) for src, n, ok in s.execute(
            select(ValidationRun.source, func.count(), func.sum(func.cast(ValidationRun.success, Integer)))
            .where(ValidationRun.created_at >= since, ValidationRun.source.is_not(None))
            .group_by(ValidationRun.source)).all()}
        quarantined = dict(s.execute(select(QuarantinedRow.source, func.count())
                                     .where(QuarantinedRow.created_at >= since)
                                     .group_by(QuarantinedRow.source)).all())
    out = []
    for source in SPECS:
        c = checks.get(source)
        n, ok = runs.get(source, (0, 0))
        out.append({"source": source, "up": c.ok if c else None, "latency_ms": c.latency_ms if c else None,
                    "failure": c.failure if c else None, "checked_at": c.checked_at if c else None,
                    "last_complete_fetch": fresh.get(source), "validation_runs": n,
                    "validation_pass_rate": round((ok or 0) / n, 4) if n else None,
                    "rows_quarantined": quarantined.get(source, 0)})
    return out
