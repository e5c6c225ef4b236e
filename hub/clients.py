"""API clients and their bearer tokens (only the SHA-256 of a token is stored)."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from hub.store import ApiClient, session

ROLES = ("department", "auditor", "staff")
_DEPT = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,63}$")


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    role: str
    department: str | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_client(name: str, role: str, department: str | None = None) -> tuple[Client, str]:
    """Create a client; return it and its token (shown once, never stored)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "department" and not (department and _DEPT.match(department)):
        raise ValueError("a department client needs --department CODE (capital letters, digits, '-')")
    token = "hub_" + secrets.token_urlsafe(32)
    row = ApiClient(id=uuid.uuid4().hex, name=name, role=role, department=department if role == "department" else None,
                    token_sha256=_hash(token))
    with session() as s:
        s.add(row)
    return Client(row.id, row.name, row.role, row.department), token


def authenticate(token: str) -> Client | None:
    if not token or len(token) > 256:
        return None
    with session() as s:
        row = s.scalars(select(ApiClient).where(ApiClient.token_sha256 == _hash(token), ApiClient.active.is_(True))).first()
        return Client(row.id, row.name, row.role, row.department) if row else None


def by_id(client_id: str) -> Client | None:
    """An active client."""
    with session() as s:
        row = s.get(ApiClient, client_id)
        return Client(row.id, row.name, row.role, row.department) if row and row.active else None
