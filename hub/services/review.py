"""What the console shows of the assistance review (hub.stages.review): the latest run, its lists with filters and
paging, each department's own entries only, and the figures its charts draw. Every read of a list is a ledger entry
(``review.read``: who, which list, how many; pseudonyms only)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from consent import ledger
from core.store import ReviewEntry, ReviewRun, session
from hub.services.clients import Client


@dataclass(frozen=True)
class Filters:
    kind: str = "missed"  # missed | review | over
    programme: str | None = None
    county: str | None = None


def latest_run(run_id: str | None = None) -> ReviewRun | None:
    """The run asked for, else the newest (by the day reviewed, then when it ran)."""
    with session() as s:
        q = select(ReviewRun)
        q = q.where(ReviewRun.id == run_id) if run_id else q.order_by(ReviewRun.as_of.desc(),
                                                                        ReviewRun.created_at.desc())
        run = s.scalars(q.limit(1)).first()
        s.expunge_all()
        return run


def entries(run: ReviewRun, filters: Filters, client: Client, *, after: int | None = None,
            limit: int = 50) -> list[ReviewEntry]:
    """The run's entries on one list, oldest first by id, ``after`` continuing past that id; a department's client
    sees only the entries that name its department. A ledger entry records the read."""
    q = select(ReviewEntry).where(ReviewEntry.run_id == run.id, ReviewEntry.kind == filters.kind)
    if filters.programme:
        q = q.where(ReviewEntry.programme == filters.programme)
    if filters.county:
        q = q.where(ReviewEntry.county == filters.county)
    if after:
        q = q.where(ReviewEntry.id > after)
    own = client.department if client.role == "department" else None
    out: list[ReviewEntry] = []
    with session() as s:
        # a department's entries are found by the JSON list of departments, read in chunks (not every store can
        # query inside a JSON list the same way)
        for e in s.scalars(q.order_by(ReviewEntry.id).execution_options(yield_per=500)):
            if own is None or own in (e.departments or []):
                out.append(e)
                if len(out) >= limit:
                    break
        s.expunge_all()
    ledger.append_durable("review.read", {"client_id": client.id, "role": client.role, "department": client.department,
                                          "run_id": run.id, "list": filters.kind, "programme": filters.programme,
                                          "county": filters.county, "rows": len(out)})
    return out
