"""What auditors read: ledger entries, one person's timeline, unusual reads, integrity against the latest checkpoint.

Everything here works on pseudonyms: an auditor who has a person's ID number turns it into the keyed pseudonym
(``person_ref``) first; the number itself is never stored, logged or put in an address.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Text, and_, cast, or_, select

from consent.tree import verify
from core.crypto import keyring
from core.store import LedgerCheckpoint, LedgerEvent, Request, RequestMember, session

LOCAL = ZoneInfo("Asia/Shanghai")
BULK_PER_HOUR = 30  # more record reads than this by one client within an hour is a bulk read
OFFICE_HOURS = (7, 21)  # local hours [from, to) in which caseworkers normally read records
READ_KINDS = ("record.read", "record.read_denied", "assistance.read", "household.lookup")
BULK_KINDS = ("record.read", "household.lookup")  # reads of whole households, counted per client for bulk
LOOKUP = "household.lookup"  # also counted per department for bulk; refused and rate-limited ones are unusual


def events(*, kind: str | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
           client_id: str | None = None, household_ref: str | None = None, request_id: str | None = None,
           before: int | None = None, limit: int = 50) -> list[LedgerEvent]:
    """Ledger entries, newest first; ``before`` continues below that seq."""
    q = select(LedgerEvent)
    if kind:
        q = q.where(LedgerEvent.kind == kind)
    if since:
        q = q.where(LedgerEvent.recorded_at >= since)
    if until:
        q = q.where(LedgerEvent.recorded_at < until)
    for key, value in (("client_id", client_id), ("household_ref", household_ref), ("request_id", request_id)):
        if value:
            q = q.where(LedgerEvent.payload[key].as_string() == value)
    if before:
        q = q.where(LedgerEvent.seq < before)
    with session() as s:
        rows = s.scalars(q.order_by(LedgerEvent.seq.desc()).limit(limit)).all()
        s.expunge_all()
        return rows


def timeline(person_ref: str, *, before: int | None = None, limit: int = 200) -> list[LedgerEvent]:
    """One person's authorizations, consent decisions, fetches, publications and reads, newest first: every entry
    naming the person, a request that names them, or a household they belong to, and every household lookup that
    names them as the applicant or a member (applicant_ref, member_refs: matched in the payload's JSON text, as a
    quoted string, on SQLite and PostgreSQL alike)."""
    with session() as s:
        request_ids = list(s.scalars(select(RequestMember.request_id).where(RequestMember.person_ref == person_ref)))
        households = [h for h in s.scalars(select(Request.household_ref).where(Request.id.in_(request_ids))
                                           .distinct()) if h]
        conds = [LedgerEvent.payload["person_ref"].as_string() == person_ref,
                 and_(LedgerEvent.kind == LOOKUP,
                      cast(LedgerEvent.payload, Text).contains(f'"{person_ref}"', autoescape=True))]
        if request_ids:
            conds.append(LedgerEvent.payload["request_id"].as_string().in_(request_ids))
        if households:
            conds.append(LedgerEvent.payload["household_ref"].as_string().in_(households))
        q = select(LedgerEvent).where(or_(*conds))
        if before:
            q = q.where(LedgerEvent.seq < before)
        rows = s.scalars(q.order_by(LedgerEvent.seq.desc()).limit(limit)).all()
        s.expunge_all()
        return rows


def household_trail(household_ref: str, *, limit: int = 500) -> list[LedgerEvent]:
    """A household's ledger trail, newest first: every entry naming it, or one of the requests made for it."""
    with session() as s:
        request_ids = list(s.scalars(select(Request.id).where(Request.household_ref == household_ref)))
        conds = [LedgerEvent.payload["household_ref"].as_string() == household_ref]
        if request_ids:
            conds.append(LedgerEvent.payload["request_id"].as_string().in_(request_ids))
        rows = s.scalars(select(LedgerEvent).where(or_(*conds)).order_by(LedgerEvent.seq.desc()).limit(limit)).all()
        s.expunge_all()
        return rows


@dataclass(frozen=True)
class UnusualRead:
    seq: int
    at: dt.datetime
    kind: str  # bulk | no_open_case | off_hours | lookup_refused | lookup_rate_limited
    client_id: str | None
    department: str | None
    household_ref: str | None
    detail: str


def unusual_reads(since: dt.datetime, until: dt.datetime | None = None) -> list[UnusualRead]:
    """Reads an auditor should look at: bulk reads (a client reading more than BULK_PER_HOUR records, or a client
    or a department looking up more than that many households, within an hour), reads refused for want of an open
    case, household lookups refused (their input, e.g. no signed form, was not acceptable) or over the department's
    rate limit, and reads outside office hours (local time)."""
    q = select(LedgerEvent).where(LedgerEvent.kind.in_(READ_KINDS), LedgerEvent.recorded_at >= since)
    if until:
        q = q.where(LedgerEvent.recorded_at < until)
    with session() as s:
        reads = s.scalars(q.order_by(LedgerEvent.seq)).all()
        s.expunge_all()
    out: list[UnusualRead] = []
    windows: dict[tuple[str, str, str], list[LedgerEvent]] = defaultdict(list)
    for e in reads:
        p = e.payload
        base = dict(seq=e.seq, at=e.recorded_at, client_id=p.get("client_id"), department=p.get("department"),
                    household_ref=p.get("household_ref"))
        if e.kind == "record.read_denied":
            why = "no policy rule for the department and purpose" if p.get("why") == "no_policy" else "no open case"
            out.append(UnusualRead(kind="no_open_case", detail=f"purpose {p.get('purpose')}: {why}", **base))
            continue
        if e.kind == LOOKUP and p.get("outcome") == "refused":
            out.append(UnusualRead(kind="lookup_refused", detail=f"household lookup refused: {p.get('why')}", **base))
            continue
        if e.kind == LOOKUP and p.get("outcome") == "rate_limited":
            out.append(UnusualRead(kind="lookup_rate_limited", detail=f"household lookup over the department's "
                                   f"limit of {p.get('limit')} per hour", **base))
            continue
        hour = e.recorded_at.astimezone(LOCAL).hour
        if not OFFICE_HOURS[0] <= hour < OFFICE_HOURS[1]:
            out.append(UnusualRead(kind="off_hours", detail=f"{hour:02d}:xx local time", **base))
        if e.kind not in BULK_KINDS:
            continue
        what = "record reads" if e.kind == "record.read" else "household lookups"
        by = [("client", p.get("client_id"))] + ([("department", p.get("department"))] if e.kind == LOOKUP else [])
        for who, key in by:  # one bulk item per entry: by the client, else by the department
            if not key:
                continue
            window = windows[(who, key, e.kind)]
            window.append(e)
            while window and e.recorded_at - window[0].recorded_at > dt.timedelta(hours=1):
                window.pop(0)
            if len(window) > BULK_PER_HOUR and not (out and out[-1].seq == e.seq and out[-1].kind == "bulk"):
                by_whom = "" if who == "client" else " by the department"
                out.append(UnusualRead(kind="bulk", detail=f"{len(window)} {what}{by_whom} within an hour", **base))
    return sorted(out, key=lambda u: u.seq, reverse=True)


def integrity() -> dict:
    """The whole ledger checked (consent.tree.verify) and the latest signed checkpoint it was checked against."""
    with session() as s:
        result = verify(s, keyring().public_key)
        cp = s.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.number.desc()).limit(1)).first()
        pending = (s.scalars(select(LedgerEvent.seq).order_by(LedgerEvent.seq.desc()).limit(1)).first() or 0)
        return {"intact": result.intact, "problems": result.problems, "events": result.events,
                "checkpoint": None if cp is None else {"number": cp.number, "size": cp.size, "root_sha256": cp.root_sha256,
                                                       "created_at": cp.created_at, "note": cp.note},
                "entries_after_checkpoint": max(0, result.events - (cp.size if cp else 0)),
                "latest_seq": pending}
