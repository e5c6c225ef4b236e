"""Sources' health for staff: each agency probed with an empty query (no person named, so no consent is
involved), each source's freshness (its last complete fetch), and whether any of it is being watched at all
(``monitoring``): a probe table that nobody refreshes looks as healthy as one refreshed a minute ago."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass

import requests
from sqlalchemy import Integer, func, select

from core.settings import settings
from core.store import FetchBatch, QuarantinedRow, SourceCheck, ValidationRun, session, utcnow
from hub.airflow.schedules import PROBE_EVERY, PROBE_GRACE
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


# -- is anything watching? ----------------------------------------------------------------------
SCHEDULER_CACHE_S = 30.0  # how long one answer of Airflow's health endpoint is reused: pages stay fast


@dataclass(frozen=True)
class Monitoring:
    """Whether the sources' health shown to staff is current, and whether anything will keep it so.

    ``level``: "ok"; "amber" (look soon: some probes are late, or no scheduler is configured); "red" (nothing is
    being watched: the scheduler does not answer, or no source was probed within its schedule)."""

    level: str
    scheduler: str  # "reachable", "unreachable", or "none" (HUB_AIRFLOW_URL unset)
    last_probe: dict[str, dt.datetime | None]  # per source, its latest probe (None: never probed)
    stale: tuple[str, ...]  # sources never probed, or not since ``stale_after`` ago
    stale_after: dt.timedelta  # the probe schedule plus its grace
    latest: dt.datetime | None  # the latest probe of any source


def monitoring_status(last_probe: dict[str, dt.datetime | None], *, now: dt.datetime, scheduler: str,
                      every: dt.timedelta = PROBE_EVERY, grace: dt.timedelta = PROBE_GRACE) -> Monitoring:
    """The monitoring's state from the latest probe of each source and the scheduler's state (pure)."""
    if scheduler not in ("reachable", "unreachable", "none"):
        raise ValueError(f"scheduler: reachable, unreachable or none, not {scheduler!r}")
    limit = now - (every + grace)
    stale = tuple(src for src, at in last_probe.items() if at is None or at < limit)
    probed = [at for at in last_probe.values() if at is not None]
    if scheduler == "unreachable" or (last_probe and len(stale) == len(last_probe)):
        level = "red"
    elif stale or scheduler == "none":
        level = "amber"
    else:
        level = "ok"
    return Monitoring(level=level, scheduler=scheduler, last_probe=dict(last_probe), stale=stale,
                      stale_after=every + grace, latest=max(probed) if probed else None)


_scheduler_lock = threading.Lock()
_scheduler_seen: dict[str, tuple[float, str]] = {}  # Airflow's URL -> (monotonic time asked, its state)


def scheduler_state() -> str:
    """"none" when HUB_AIRFLOW_URL is unset (nothing is scheduled: the hub's own worker only verifies requests);
    else whether Airflow's health endpoint says its metadatabase and scheduler are healthy, asked at most every
    SCHEDULER_CACHE_S seconds (with the client's short timeout)."""
    url = settings().airflow_url
    if not url:
        return "none"
    with _scheduler_lock:
        seen = _scheduler_seen.get(url)
        if seen and time.monotonic() - seen[0] < SCHEDULER_CACHE_S:
            return seen[1]
    from hub.airflow.client import AirflowClient  # requests only; no login needed for the health endpoint

    state = "reachable" if AirflowClient(url.rstrip("/"), "", "").healthy() else "unreachable"
    with _scheduler_lock:
        _scheduler_seen[url] = (time.monotonic(), state)
    return state


def monitoring(now: dt.datetime | None = None, checks: dict[str, SourceCheck] | None = None) -> Monitoring:
    """The monitoring's state now: each agency source's latest probe (``checks``, when the caller has read them
    already: latest_checks), and the scheduler's state."""
    checks = latest_checks() if checks is None else checks
    return monitoring_status({src: checks[src].checked_at if src in checks else None for src in SPECS},
                             now=now or utcnow(), scheduler=scheduler_state())
