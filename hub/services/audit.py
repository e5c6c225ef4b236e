"""What auditors read: ledger entries, one person's timeline, unusual reads, integrity against the latest checkpoint.

Everything here works on pseudonyms: an auditor who has a person's ID number turns it into the keyed pseudonym
(``person_ref``) first; the number itself is never stored, logged or put in an address.

An entry names its actors by id (``client_id``, ``basis=request:<id>``); ``resolve`` turns a page of entries into
what an auditor asks of each ("who read this person's data, and why"): the account's name, the department, the
purpose and the department's case number, in one query per table whatever the number of entries.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Text, and_, cast, or_, select

from consent import ledger
from consent.tree import checkpoint_now, verify
from core.crypto import keyring
from core.store import (ApiClient, LedgerCheckpoint, LedgerEvent, Request, RequestMember, ReviewEntry, session)

LOCAL = ZoneInfo("Asia/Shanghai")
BULK_PER_HOUR = 30  # more record reads than this by one client within an hour is a bulk read
OFFICE_HOURS = (7, 21)  # local hours [from, to) in which caseworkers normally read records
READ_KINDS = ("record.read", "record.read_denied", "assistance.read", "household.lookup")
BULK_KINDS = ("record.read", "household.lookup")  # reads of whole households, counted per client for bulk
LOOKUP = "household.lookup"  # also counted per department for bulk; refused and rate-limited ones are unusual
REVIEW_READ = "review.read"
CHECKPOINT_SIGNED = "audit.checkpoint_signed"  # an auditor signed a checkpoint from the console


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


def timeline(person_ref: str, *, before: int | None = None, limit: int = 200,
             seq: int | None = None) -> list[LedgerEvent]:
    """One person's authorizations, consent decisions, fetches, publications and reads, newest first: every entry
    naming the person, a request that names them, or a household they belong to (record reads, the DCI's too,
    assistance reports and reads, purges), every household lookup that names them as the applicant or a member
    (applicant_ref, member_refs: matched in the payload's JSON text, as a quoted string, on SQLite and PostgreSQL
    alike), and every read of a review list their household is on."""
    with session() as s:
        request_ids = list(s.scalars(select(RequestMember.request_id).where(RequestMember.person_ref == person_ref)))
        households = [h for h in s.scalars(select(Request.household_ref).where(Request.id.in_(request_ids))
                                           .distinct()) if h]
        conds = [LedgerEvent.payload["person_ref"].as_string() == person_ref,
                 and_(LedgerEvent.kind == LOOKUP,
                      cast(LedgerEvent.payload, Text).contains(f'"{person_ref}"', autoescape=True))]
        if request_ids:
            conds.append(LedgerEvent.payload["request_id"].as_string().in_(request_ids))
        listed: dict[str, list] = defaultdict(list)  # review run -> the lists the households are on in it
        if households:
            conds.append(LedgerEvent.payload["household_ref"].as_string().in_(households))
            for entry in s.execute(select(ReviewEntry.run_id, ReviewEntry.kind, ReviewEntry.programme,
                                          ReviewEntry.county, ReviewEntry.departments)
                                   .where(ReviewEntry.household_ref.in_(households))):
                listed[entry.run_id].append(entry)
        if listed:
            conds.append(and_(LedgerEvent.kind == REVIEW_READ,
                              LedgerEvent.payload["run_id"].as_string().in_(list(listed))))
        q = select(LedgerEvent).where(or_(*conds))
        if before:
            q = q.where(LedgerEvent.seq < before)
        if seq is not None:  # is this one entry on the timeline?
            q = q.where(LedgerEvent.seq == seq)
        rows = s.scalars(q.order_by(LedgerEvent.seq.desc()).limit(limit)).all()
        s.expunge_all()
        return [e for e in rows if e.kind != REVIEW_READ or _on_list_read(e.payload, listed[e.payload.get("run_id")])]


def _on_list_read(read: dict, entries: list) -> bool:
    """Whether a review-list read (its filters: list, programme, county; a department sees its own households only)
    covered one of these entries of the run."""
    return any(e.kind == read.get("list") and read.get("programme") in (None, e.programme)
               and read.get("county") in (None, e.county)
               and (read.get("role") != "department" or read.get("department") in (e.departments or []))
               for e in entries)


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
    """The whole ledger checked (consent.tree.verify) and the latest signed checkpoint it was checked against.

    ``state``: ``green`` when the ledger is intact and every entry is under a signed checkpoint, ``amber`` when it
    is intact but ``entries_after_checkpoint`` entries are not under one yet (they are checked against nothing
    signed: an intact ledger alone does not vouch for them), ``red`` when any problem was found."""
    with session() as s:
        result = verify(s, keyring().public_key)
        cp = s.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.number.desc()).limit(1)).first()
        pending = (s.scalars(select(LedgerEvent.seq).order_by(LedgerEvent.seq.desc()).limit(1)).first() or 0)
        after = max(0, result.events - (cp.size if cp else 0))
        latest = None if cp is None else {"number": cp.number, "size": cp.size, "root_sha256": cp.root_sha256,
                                          "created_at": cp.created_at, "note": cp.note}
        return {"intact": result.intact, "problems": result.problems, "events": result.events, "checkpoint": latest,
                "entries_after_checkpoint": after, "latest_seq": pending,
                "state": "red" if not result.intact else "amber" if after else "green"}


def sign_checkpoint(client_id: str) -> dict:
    """Sign a checkpoint now, for an auditor who finds entries not yet under one: the auditor's request is a ledger
    entry (``audit.checkpoint_signed``), committed first so that the checkpoint it asks for covers it; the checkpoint
    is consent.tree.checkpoint_now's, the one the ledger_checkpoint DAG and `hub audit checkpoint` sign (one
    checkpointer at a time). Returns its number, size and root."""
    with session() as s:
        ledger.append(s, CHECKPOINT_SIGNED, {"client_id": client_id})
    cp = checkpoint_now(keyring().signing_key)
    return {"number": cp.number, "size": cp.size, "root_sha256": cp.root_sha256}


# -- entries as an auditor reads them ----------------------------------------------------------------------------

# entries the hub makes by itself, for a request (no account asked for them)
AUTOMATIC = frozenset({"consent.allowed", "consent.refused", "fetch.completed", "fetch.skipped",
                       "validation.completed", "record.published", "publish.refused", "publish.failed",
                       "authorization.expired", "data.purged", "recheck.started", "review.completed",
                       "verification.triggered"})
SUBMITTED = frozenset({"entrustment.received", "authorization.granted"})  # the request's own account made these


@dataclass(frozen=True)
class Entry:
    """A ledger entry with who and why resolved: the account (the API or console client: its name), the department
    (its code), the purpose (its code), the department's case number (the request's), and what was asked or read."""

    seq: int
    at: dt.datetime
    kind: str
    payload: dict
    client_id: str | None
    account: str | None  # the client's name; None for an entry the hub made by itself or of an unknown client
    automatic: bool  # made by the hub itself (a consent decision, a fetch, a publication, a purge...)
    department: str | None
    purpose: str | None
    case_ref: str | None
    request_id: str | None
    sources: tuple[str, ...]
    fields: tuple[str, ...]


def _request_of(payload: dict) -> str | None:
    basis = payload.get("basis")
    if isinstance(basis, str) and basis.startswith("request:"):
        return basis.removeprefix("request:")
    rid = payload.get("request_id")
    return rid if isinstance(rid, str) else None


def _strings(value) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


RESOLVE_CHUNK = 5000  # ids per query: a page is one query per table, an export of 50,000 entries a few


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i:i + RESOLVE_CHUNK] for i in range(0, len(ids), RESOLVE_CHUNK)]


def _names(s, client_ids) -> dict[str, str]:
    names: dict[str, str] = {}
    for ids in _chunks(sorted(client_ids)):
        names.update(s.execute(select(ApiClient.id, ApiClient.name).where(ApiClient.id.in_(ids))).all())
    return names


def account_names(client_ids) -> dict[str, str]:
    """The clients' names by id (those that exist), in one query (up to RESOLVE_CHUNK ids a query)."""
    with session() as s:
        return _names(s, {c for c in client_ids if c})


def resolve(events: list[LedgerEvent]) -> list[Entry]:
    """The entries with their accounts, departments, purposes and case numbers: the requests they name (by
    ``request_id`` or a read's ``basis=request:<id>``) in one query, then their clients (named in the entries or
    having made the requests) in one more, whatever the number of entries (up to RESOLVE_CHUNK ids a query)."""
    request_ids = sorted({r for e in events if (r := _request_of(e.payload))})
    requests = {}
    with session() as s:
        for ids in _chunks(request_ids):
            requests.update((r.id, r) for r in s.execute(
                select(Request.id, Request.case_ref, Request.department, Request.purpose, Request.client_id)
                .where(Request.id.in_(ids))))
        client_ids = {c for e in events if isinstance(c := e.payload.get("client_id"), str)}
        client_ids |= {r.client_id for r in requests.values() if r.client_id}
        names = _names(s, client_ids)
    out = []
    for e in events:
        p = e.payload
        req = requests.get(_request_of(p) or "")
        client_id = p.get("client_id") if isinstance(p.get("client_id"), str) else None
        if client_id is None and req is not None and e.kind in SUBMITTED:
            client_id = req.client_id
        sources = _strings(p.get("sources")) or _strings(p.get("source"))
        out.append(Entry(
            seq=e.seq, at=e.recorded_at, kind=e.kind, payload=p, client_id=client_id,
            account=names.get(client_id) if client_id else None,
            automatic=client_id is None and e.kind in AUTOMATIC,
            department=p.get("department") or (req.department if req else None),
            purpose=p.get("purpose") or p.get("programme") or (req.purpose if req else None),
            case_ref=p.get("case_ref") or (req.case_ref if req else None),
            request_id=req.id if req else _request_of(p),
            sources=sources, fields=_strings(p.get("fields"))))
    return out
