"""API clients and their bearer tokens (only the SHA-256 of a token is stored).

Roles: department (with its code, e.g. MZ-210302), auditor, staff, admin, and federation: another verification
platform (the province's, the ministry's, another city's hub; code FED-<division> or HUB-<division>) that speaks
the DCI Social Registry API (hub/dci), with its Ed25519 public key, against which the signature of every message it
sends is checked.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select

from connectors.envelope import load_public_key
from consent import ledger
from core import ids as params
from core.store import ApiClient, ConsoleSession, session

ROLES = ("department", "auditor", "staff", "admin", "federation")
DEPARTMENT_CODE = re.compile(params.DEPARTMENT)
PLATFORM = re.compile(params.PLATFORM)  # a federated platform's code: its DCI sender id


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    role: str
    department: str | None  # the department's code; a federated platform's code (its DCI sender id)
    public_key: str | None = None  # federation: Ed25519, raw, base64url


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def public_key_problem(value: str | None) -> str | None:
    """Why ``value`` is not an Ed25519 public key (raw 32 bytes, base64url), or None."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]{43}=?", value):
        return "public key: an Ed25519 public key, raw 32 bytes in base64url (43 characters)"
    try:
        load_public_key(value)
    except ValueError:
        return "public key: not an Ed25519 public key"
    return None


def create_client(name: str, role: str, department: str | None = None, *, public_key: str | None = None,
                  created_by: str | None = None) -> tuple[Client, str]:
    """Create a client; return it and its token (shown once, never stored). A ledger entry names who did it.

    A federation client names the platform's code (``department``: FED-... or HUB-..., its DCI sender id) and its
    Ed25519 public key."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "department" and not (department and DEPARTMENT_CODE.fullmatch(department)):  # "$" lets "MZ-1\n" through
        raise ValueError("a department client needs --department CODE (capital letters, digits, '-')")
    if role == "department" and PLATFORM.fullmatch(department):
        raise ValueError("FED-... and HUB-... codes are federated platforms': use --role federation")
    if role == "federation":
        if not (department and PLATFORM.fullmatch(department)):
            raise ValueError("a federation client needs --department CODE: the platform's code, FED-<division> "
                             "(province, ministry) or HUB-<division> (another city's hub), e.g. HUB-210200")
        problem = public_key_problem(public_key)
        if problem:
            raise ValueError(f"a federation client needs --public-key: {problem}")
        public_key = public_key.rstrip("=")
    elif public_key is not None:
        raise ValueError("only federation clients have a public key")
    token = "hub_" + secrets.token_urlsafe(32)
    row = ApiClient(id=uuid.uuid4().hex, name=name, role=role,
                    department=department if role in ("department", "federation") else None,
                    token_sha256=_hash(token), public_key=public_key)
    with session() as s:
        s.add(row)
        ledger.append(s, "client.created", {"client_id": row.id, "role": role, "department": row.department,
                                            "by": created_by or "cli"})
    return Client(row.id, row.name, row.role, row.department, row.public_key), token


def token_hash(token: str) -> str | None:
    """What is stored of a token (its SHA-256), or None for a string that cannot be one of ours."""
    if not token or len(token) > 256 or not token.isascii():  # ours are ASCII; a lone surrogate cannot be hashed
        return None
    return _hash(token)


def authenticate(token: str) -> Client | None:
    digest = token_hash(token)
    if digest is None:
        return None
    with session() as s:
        row = s.scalars(select(ApiClient).where(ApiClient.token_sha256 == digest, ApiClient.active.is_(True))).first()
        return Client(row.id, row.name, row.role, row.department, row.public_key) if row else None


_recent: dict[str, tuple[Client, float]] = {}
RECENT_S = 60.0


def recent(token: str) -> Client | None:
    """The client of ``token`` if this process found it within the last RECENT_S seconds (no store access), else
    None: see ``recently_authenticated``."""
    return _recent_by_digest(token_hash(token))


def _recent_by_digest(digest: str | None) -> Client | None:
    found = _recent.get(digest) if digest is not None else None
    return found[0] if found is not None and time.monotonic() - found[1] < RECENT_S else None


def recently_authenticated(token: str) -> Client | None:
    """The client of ``token`` as ``authenticate`` found it within the last RECENT_S seconds in this process (else
    looked up now). Only for a route whose own statement checks the client again, active, by the token's hash (the
    record read: hub.services.reads.read_record_with_token), so that a token revoked meanwhile reads nothing: what
    this saves is the lookup before the route, not the check."""
    digest = token_hash(token)
    if digest is None:
        return None
    found = _recent_by_digest(digest)
    if found is not None:
        return found
    client = authenticate(token)
    if client is None:
        _recent.pop(digest, None)
    else:
        if len(_recent) > 10_000:  # tokens seen by a long-running process: start again
            _recent.clear()
        _recent[digest] = (client, time.monotonic())
    return client


def by_id(client_id: str) -> Client | None:
    """An active client."""
    with session() as s:
        row = s.get(ApiClient, client_id)
        return Client(row.id, row.name, row.role, row.department, row.public_key) if row and row.active else None


def _row(row: ApiClient) -> dict:
    return {"id": row.id, "name": row.name, "role": row.role, "department": row.department, "active": row.active,
            "created_at": row.created_at}


def describe(client_id: str) -> dict | None:
    with session() as s:
        row = s.get(ApiClient, client_id)
        return _row(row) if row else None


def listing(*, before: str | None = None, limit: int = 50) -> list[dict]:
    """Every client, by id (keyset: ``before`` continues below that id)."""
    q = select(ApiClient)
    if before:
        q = q.where(ApiClient.id < before)
    with session() as s:
        return [_row(r) for r in s.scalars(q.order_by(ApiClient.id.desc()).limit(limit))]


def deactivate(client_id: str, *, by: str | None = None) -> bool:
    """Revoke a client's token and end its console sessions; False when there is no such active client."""
    with session() as s:
        row = s.get(ApiClient, client_id)
        if row is None or not row.active:
            return False
        row.active = False
        s.execute(delete(ConsoleSession).where(ConsoleSession.client_id == client_id))
        ledger.append(s, "client.deactivated", {"client_id": client_id, "by": by or "cli"})
    for digest in [d for d, (c, _) in list(_recent.items()) if c.id == client_id]:  # this process forgets it at once
        _recent.pop(digest, None)
    return True
