"""Reads that leave a trace: a department's read of a household's record (cut by the access policy, signed by the
hub), an auditor's read of the ledger, and an entry's inclusion proof. The JSON API and the console call the same
functions, so a read is the same read, with the same ledger entry, whichever face it came through."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from types import SimpleNamespace
from typing import NamedTuple

import anyio
from sqlalchemy import bindparam, select

from consent import ledger
from consent.tree import NotCheckpointed, inclusion
from core.crypto import canonical_json, keyring
from core.store import ApiClient, AsyncEngines, HouseholdRecord, engine, session, utcnow
from hub.rules import policy
from hub.services import clients
from hub.services.clients import Client
from hub.services.errors import Conflict, NotEntitled, NotFound
from hub.stages.records import decrypt_content, record_query

NOT_ENTITLED = "no record this department may read for that purpose"


@dataclass(frozen=True)
class RecordView:
    """The record as one department may read it for one purpose."""

    household_id: str
    version: int
    as_of: dt.datetime
    recorded_at: dt.datetime
    completeness: dict[str, str]
    content_sha256: str  # of the whole published record (what the ledger vouches for)
    policy_rule: str  # the access-policy rule that decided what ``content`` holds
    fields: list[str]  # the parts of the record returned, as the ledger records them
    signature: str  # Ed25519 over the canonical JSON of ``content``
    content: dict
    # what a face made of this view (the JSON API's answer), kept with it: views are cached (``_views``)
    rendered: dict = field(default_factory=dict, compare=False, repr=False)


def read_record(household_id: str, purpose: str, as_of: dt.datetime | None, client: Client,
                valid_at: dt.datetime | None = None) -> RecordView:
    """The record cut to what the policy grants the department for the purpose, if it has an open case for the
    household; NotEntitled otherwise (the same whether the household exists or not). Every read, and every
    refused one, is a ledger entry, durable before the read answers (consent.ledger.append_durable: the entries of
    reads served at once are committed together); LedgerUnavailable when it cannot be made durable, and then
    nothing is answered."""
    return _read("id", client.id, household_id, purpose, as_of, valid_at, admit=None)


def read_record_with_token(token: str, household_id: str, purpose: str, as_of: dt.datetime | None,
                           valid_at: dt.datetime | None, admit: Callable[[Client | None], None]) -> RecordView:
    """``read_record`` for the bearer of ``token``: the client (checked again: active, by the token's hash), its open
    case and the record in one statement. ``admit`` is called with the client found (None when no active client
    has the token now) before anything is recorded or answered; it raises to refuse."""
    return _read("token", clients.token_hash(token), household_id, purpose, as_of, valid_at, admit=admit)


_RECORD = HouseholdRecord.__table__.alias("rec")
_META = ("id", "household_ref", "version", "as_of", "recorded_at", "completeness", "content_sha256")


@lru_cache(maxsize=8)
def _statement(who: str, as_of: bool, valid_at: bool):
    """The read's one statement, built once per shape: the active client (by id or by its token's hash), the open
    case of its department for the household and purpose (hub.rules.policy.case_query, as a scalar subquery), and
    the record version read (hub.stages.records.record_query) without its content, run with bind parameters."""
    c = ApiClient.__table__
    case = (policy.case_query(c.c.department, bindparam("household"), bindparam("now"), bindparam("purpose"))
            .correlate(c).scalar_subquery())
    latest = record_query(bindparam("household"), HouseholdRecord.id, as_of=bindparam("as_of") if as_of else None,
                          valid_at=bindparam("valid_at") if valid_at else None).scalar_subquery()
    return (select(c.c.id, c.c.name, c.c.role, c.c.department, c.c.public_key, case.label("case_id"),
                   *(_RECORD.c[k].label(f"record_{k}") for k in _META))
            .select_from(c.outerjoin(_RECORD, _RECORD.c.id == latest))
            .where(c.c.active.is_(True), (c.c.token_sha256 if who == "token" else c.c.id) == bindparam("who")))


def _reading():
    """A connection for reads: in autocommit on PostgreSQL; SQLite's driver begins no transaction for a SELECT, so
    there nothing is set (setting it costs more per read than the statement)."""
    eng = engine()
    conn = eng.connect()
    return conn if eng.dialect.name == "sqlite" else conn.execution_options(isolation_level="AUTOCOMMIT")


def _params(who: str, value: str | None, household_id: str, purpose: str, as_of, valid_at, now) -> tuple:
    return (_statement(who, as_of is not None, valid_at is not None),
            {"who": value, "household": household_id, "purpose": purpose, "now": now, "as_of": as_of,
             "valid_at": valid_at})


@dataclass(frozen=True)
class _Decision:
    """What the read's statement decided: the client, the rule, the case that opens the read (None: refused) and
    the record version to answer with."""

    client: Client
    rule: policy.Rule | None
    basis: str | None
    version: _Version | None


def _decide(row, purpose: str, admit: Callable[[Client | None], None] | None) -> _Decision:
    client = Client(row.id, row.name, row.role, row.department, row.public_key) if row is not None else None
    if admit is not None:
        admit(client)
    if client is None:  # no longer active
        raise NotEntitled(NOT_ENTITLED)
    rule = policy.rule_for(client.department or "", purpose)
    basis = f"request:{row.case_id}" if rule is not None and row.case_id is not None else None
    version = _Version(*(getattr(row, f"record_{k}") for k in _META)) \
        if basis is not None and row.record_id is not None else None
    return _Decision(client, rule, basis, version)


def _entry(decision: _Decision, view: RecordView | None, household_id: str, purpose: str) -> tuple[str, dict]:
    """The read's ledger entry: ``record.read`` with what was answered, or ``record.read_denied`` (the same refusal
    whether the household exists or not)."""
    client, rule = decision.client, decision.rule
    if decision.basis is None:
        return "record.read_denied", {"client_id": client.id, "department": client.department, "purpose": purpose,
                                      "household_ref": household_id[:40],
                                      "why": "no_policy" if rule is None else "no_open_case"}
    return "record.read", {"client_id": client.id, "department": client.department, "purpose": purpose,
                           "household_ref": household_id, "version": view.version, "basis": decision.basis,
                           "policy_rule": rule.name, "fields": rule.returns}


def _read(who: str, value: str | None, household_id: str, purpose: str, as_of: dt.datetime | None,
          valid_at: dt.datetime | None, *, admit: Callable[[Client | None], None] | None) -> RecordView:
    now = utcnow()
    # reads only, in autocommit (one statement, one snapshot; no BEGIN or ROLLBACK round trips), SQLAlchemy Core (no
    # ORM state); the entry is the ledger writer's
    with _reading() as conn:
        row = None
        if value is not None:
            row = conn.execute(*_params(who, value, household_id, purpose, as_of, valid_at, now)).first()
        decision = _decide(row, purpose, admit)
        view = None
        if decision.version is not None:
            view = _views.get(decision.version, decision.client.department or "", decision.rule, conn)
    if decision.basis is not None and view is None:
        raise NotEntitled(NOT_ENTITLED)
    ledger.append_durable(*_entry(decision, view, household_id, purpose), at=now)
    if view is None:
        raise NotEntitled(NOT_ENTITLED)
    return view


async def read_record_with_token_async(engines: AsyncEngines | None, token: str, household_id: str, purpose: str,
                                       as_of: dt.datetime | None, valid_at: dt.datetime | None,
                                       admit: Callable[[Client | None], None]) -> RecordView:
    """``read_record_with_token`` on the event loop that serves, without a worker thread: on PostgreSQL the
    statement runs on ``engines``' asyncio engine and the read awaits its ledger entry (consent.ledger.
    append_durable_async), the same statement, decision, view and entry; a view not made yet is made in a worker
    thread (decrypting and signing). Elsewhere (SQLite has no asyncio driver here), or without ``engines``, the read
    runs in a worker thread as ``read_record_with_token``."""
    eng = engines.get() if engines is not None else None
    if eng is None:
        return await anyio.to_thread.run_sync(read_record_with_token, token, household_id, purpose, as_of, valid_at,
                                              admit)
    now = utcnow()
    async with eng.connect() as conn:  # in autocommit (AsyncEngines): one statement, one round trip
        row = (await conn.execute(*_params("token", clients.token_hash(token), household_id, purpose, as_of,
                                           valid_at, now))).first()
    decision = _decide(row, purpose, admit)
    view = None
    if decision.version is not None:
        department = decision.client.department or ""
        view = _views.cached(decision.version, department, decision.rule)
        if view is None:
            view = await anyio.to_thread.run_sync(_views.make, decision.version, department, decision.rule)
    if decision.basis is not None and view is None:
        raise NotEntitled(NOT_ENTITLED)
    await ledger.append_durable_async(*_entry(decision, view, household_id, purpose), at=now)
    if view is None:
        raise NotEntitled(NOT_ENTITLED)
    return view


class _Version(NamedTuple):
    """A record version as the read's statement gives it: everything but its content."""

    id: int
    household_ref: str
    version: int
    as_of: dt.datetime
    recorded_at: dt.datetime
    completeness: dict
    content_sha256: str


def _view_key(record: _Version, department: str, rule: policy.Rule) -> tuple:
    return record.household_ref, record.version, record.content_sha256, department, rule.name


class _ViewCache:
    """Views already made, by record version, department and rule (least recently used dropped first): a view is
    the same bytes for every read of that version by that department under that rule, and decrypting and signing it
    are the read's largest costs. A view made under other keys (rotation) or another policy is made again."""

    def __init__(self, size: int = 512):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def cached(self, record: _Version, department: str, rule: policy.Rule) -> RecordView | None:
        """The view kept for that version, department and rule, if it was made under today's keys and policy."""
        keys = keyring()
        key = _view_key(record, department, rule)
        with self.lock:
            found = self.items.get(key)
            if found is not None and found[0] is keys and found[1] is rule:
                self.items.move_to_end(key)
                return found[2]
        return None

    def get(self, record: _Version, department: str, rule: policy.Rule, conn) -> RecordView:
        """The view, kept or made now (its content read on ``conn``)."""
        view = self.cached(record, department, rule)
        if view is not None:
            return view
        keys, key = keyring(), _view_key(record, department, rule)
        view = _make_view(record, department, rule, keys, conn)
        with self.lock:
            self.items[key] = (keys, rule, view)
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return view

    def make(self, record: _Version, department: str, rule: policy.Rule) -> RecordView:
        """``get`` on a connection of its own (a read served on the event loop makes a view in a worker thread)."""
        with _reading() as conn:
            return self.get(record, department, rule, conn)


def _make_view(record: _Version, department: str, rule: policy.Rule, keys, conn) -> RecordView:
    """The view of one version (its content read on the caller's connection ``conn``, decrypted, cut, persons
    re-keyed for the department, signed)."""
    enc = conn.execute(select(HouseholdRecord.content_enc).where(HouseholdRecord.id == record.id)).scalar_one()
    stored = SimpleNamespace(content_enc=enc, household_ref=record.household_ref, version=record.version)
    content = policy.scope_persons(policy.cut(decrypt_content(stored), rule),
                                   lambda ref: keys.scoped(ref, f"department:{department}"))
    return RecordView(household_id=record.household_ref, version=record.version, as_of=record.as_of,
                      recorded_at=record.recorded_at, completeness=record.completeness,
                      content_sha256=record.content_sha256, policy_rule=rule.name, fields=rule.returns,
                      signature=keys.sign(canonical_json(content)), content=content)


_views = _ViewCache()


def audit_read(client: Client, what: str, entries: int, **refs: str) -> None:
    """Auditors' reads of the ledger are ledger entries too (durable before the read answers)."""
    ledger.append_durable("audit.read", {"client_id": client.id, "what": what, "entries": entries, **refs})


def ledger_proof(seq: int) -> dict:
    """The inclusion proof of ledger entry ``seq`` against the latest signed checkpoint (RFC 6962); Conflict while
    no signed checkpoint covers the entry yet, NotFound when there is no such entry."""
    try:
        with session() as s:
            return inclusion(s, seq)
    except NotCheckpointed as exc:
        raise Conflict(str(exc)) from None
    except LookupError:
        raise NotFound("no such ledger entry") from None
