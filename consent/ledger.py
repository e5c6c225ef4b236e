"""The ledger: an append-only log of every consent decision, fetch, validation, publication and read.

Each event is stored with its RFC 6962 leaf hash, SHA-256(0x00 || canonical JSON of the entry), so the
Merkle tree and signed checkpoints can be built over it. Payloads carry pseudonyms and hashes only: never
a name, an ID number or a fetched value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from sqlalchemy.orm import Session

from core.crypto import canonical_json
from core.store import LedgerEvent, utcnow
from schemas.codes import is_valid_id

# A resident ID number anywhere in a payload is a bug: refuse to write it.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z_])\d{17}[\dXx](?![0-9A-Za-z_])")


class PersonalDataInLedger(ValueError):
    """A payload looked like it held personal data; nothing was written."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def entry_bytes(kind: str, recorded_at: dt.datetime, payload: dict) -> bytes:
    return canonical_json({"kind": kind, "at": recorded_at.isoformat(), "payload": payload})


def _checked_entry(kind: str, at: dt.datetime, payload: dict) -> bytes:
    data = entry_bytes(kind, at, payload)
    if any(is_valid_id(m) for m in _ID_NUMBER.findall(data.decode("utf-8"))):
        raise PersonalDataInLedger(f"ledger payload of kind {kind!r} contains an identity number")
    return data


def append(s: Session, kind: str, payload: dict, *, at: dt.datetime | None = None) -> LedgerEvent:
    """Append one event inside the caller's transaction (so it commits or rolls back with the work)."""
    at = (at or utcnow()).astimezone(dt.timezone.utc).replace(microsecond=0)
    data = _checked_entry(kind, at, payload)
    event = LedgerEvent(kind=kind, recorded_at=at, payload=payload, leaf_sha256=leaf_hash(data).hex())
    s.add(event)
    s.flush()
    return event


def append_many(s: Session, entries: list[tuple[str, dict]], *, at: dt.datetime | None = None) -> int:
    """Append a batch of events in one statement (same checks as ``append``); returns how many."""
    at = (at or utcnow()).astimezone(dt.timezone.utc).replace(microsecond=0)
    rows = []
    for kind, payload in entries:
        data = _checked_entry(kind, at, payload)
        rows.append({"kind": kind, "recorded_at": at, "payload": payload, "leaf_sha256": leaf_hash(data).hex()})
    if rows:
        s.execute(LedgerEvent.__table__.insert(), rows)
    return len(rows)
