"""Sources' health for staff: each agency probed with an empty query (no person named, so no consent is
involved), and each source's freshness (its last complete fetch)."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from hub.store import FetchBatch, SourceCheck, session

log = logging.getLogger(__name__)


def probe_source(source: str, *, base_url: str | None = None, secret: str | None = None) -> dict:
    from connectors import registry
    from hub.config import settings

    import requests

    try:
        base = base_url or registry.base_url(source, settings().agencies_url)
    except (requests.RequestException, LookupError, ValueError):  # nowhere to find the agency: it is not reachable
        ok, latency_ms, failure = False, None, "UNREACHABLE"
    else:
        ok, latency_ms, failure = registry.connector(source, base, secret).probe()
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
