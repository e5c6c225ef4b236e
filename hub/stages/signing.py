"""Signing on the phone (码上办): a request made with ``mobile_signing`` terms waits (status ``signing``) with the
terms its members are asked to sign and one invitation per member, each a link with a random token (of which
only the SHA-256 is looked up). What residents do with the invitations is hub.services.residents'.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid

from consent.authorizations import adult_from
from core.crypto import keyring
from core.store import Request, ResidentMessage, SigningInvitation, SigningTerms, aad_invitation, utcnow
from schemas.sources import FINANCIAL_SOURCES
from schemas.vocabulary import SOURCE_KEYS

INVITATION_DAYS = 14  # how long a signing link is valid, unless the request says otherwise (link_days)
TERMS = (("valid_days", 1, 3650, 180), ("recheck_interval_days", 1, 3650, 90), ("data_life_days", 1, 3650, 30),
         ("link_days", 1, 60, INVITATION_DAYS))


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_terms(doc) -> list[str]:
    """Problems of a request's ``mobile_signing`` terms (fields only)."""
    if not isinstance(doc, dict):
        return ["mobile_signing: an object (may be empty: the defaults)"]
    problems = []
    for key, low, high, default in TERMS:
        value = doc.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            problems.append(f"mobile_signing.{key}: whole days from {low} to {high}")
    unknown = set(doc) - {t[0] for t in TERMS}
    if unknown:
        problems.append(f"mobile_signing: unknown fields ({', '.join(sorted(unknown))})")
    return problems


def open_signing(s, request_id: str, doc: dict, members: list[dict], now: dt.datetime | None = None) -> None:
    """Inside the request's transaction: its terms to sign and one invitation per member (a message to each)."""
    now = now or utcnow()
    keys = keyring()
    req = s.get(Request, request_id)
    sources = [k for k in req.sources if k in SOURCE_KEYS]
    valid_from = now.replace(microsecond=0)
    terms = {"valid_from": valid_from.isoformat(),
             "valid_until": (valid_from + dt.timedelta(days=doc.get("valid_days", 180))).isoformat(),
             "recheck_interval_days": doc.get("recheck_interval_days", 90),
             "data_life_days": doc.get("data_life_days", 30),
             "sources": [k for k in sources if k not in FINANCIAL_SOURCES],
             "financial_sources": [k for k in sources if k in FINANCIAL_SOURCES]}
    s.add(SigningTerms(request_id=request_id, terms=terms, created_at=now))
    expires = now + dt.timedelta(days=doc.get("link_days", INVITATION_DAYS))
    for m in members:
        idn = m["id_number"].upper()
        ref = keys.pseudonym(idn)
        token, inv_id = secrets.token_urlsafe(16), uuid.uuid4().hex
        s.add(SigningInvitation(id=inv_id, token_sha256=token_digest(token),
                                token_enc=keys.encrypt(token, aad=aad_invitation(inv_id)), request_id=request_id,
                                person_ref=ref, minor=valid_from.date() < adult_from(idn), expires_at=expires,
                                state="pending", created_at=now))
        s.add(ResidentMessage(person_ref=ref, kind="sign.invited", request_id=request_id,
                              params={"department": req.department, "purpose": req.purpose}, created_at=now))
