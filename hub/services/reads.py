"""Reads that leave a trace: a department's read of a household's record (cut by the access policy, signed by the
hub), an auditor's read of the ledger, and an entry's inclusion proof. The JSON API and the console call the same
functions, so a read is the same read, with the same ledger entry, whichever face it came through."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from consent import ledger
from consent.tree import NotCheckpointed, inclusion
from core.crypto import canonical_json, keyring
from core.store import session, utcnow
from hub.rules import policy
from hub.services.clients import Client
from hub.services.errors import Conflict, NotEntitled, NotFound
from hub.stages.records import RecordNotFound, load_record

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


def read_record(household_id: str, purpose: str, as_of: dt.datetime | None, client: Client,
                valid_at: dt.datetime | None = None) -> RecordView:
    """The record cut to what the policy grants the department for the purpose, if it has an open case for the
    household; NotEntitled otherwise (the same whether the household exists or not). Every read, and every
    refused one, is a ledger entry."""
    rule = policy.rule_for(client.department or "", purpose)
    with session() as s:  # one transaction: the check, the read and its ledger entry
        basis = policy.open_case(s, client.department or "", household_id, purpose, utcnow()) if rule else None
        if basis is None:  # the same answer whether the household exists or not
            ledger.append(s, "record.read_denied", {"client_id": client.id, "department": client.department,
                                                    "purpose": purpose, "household_ref": household_id[:40],
                                                    "why": "no_policy" if rule is None else "no_open_case"})
        else:
            try:
                record, content = load_record(household_id, as_of=as_of, valid_at=valid_at, s=s)
            except RecordNotFound:
                record = None
            else:
                ledger.append(s, "record.read", {"client_id": client.id, "department": client.department,
                                                 "purpose": purpose, "household_ref": household_id,
                                                 "version": record.version, "basis": basis, "policy_rule": rule.name,
                                                 "fields": rule.returns})
    if basis is None or record is None:
        raise NotEntitled(NOT_ENTITLED)
    keys = keyring()
    view = policy.scope_persons(policy.cut(content, rule),
                                lambda ref: keys.scoped(ref, f"department:{client.department}"))
    return RecordView(household_id=record.household_ref, version=record.version, as_of=record.as_of,
                      recorded_at=record.recorded_at, completeness=record.completeness,
                      content_sha256=record.content_sha256, policy_rule=rule.name, fields=rule.returns,
                      signature=keys.sign(canonical_json(view)), content=view)


def audit_read(client: Client, what: str, entries: int, **refs: str) -> None:
    """Auditors' reads of the ledger are ledger entries too."""
    with session() as s:
        ledger.append(s, "audit.read", {"client_id": client.id, "what": what, "entries": entries, **refs})


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
