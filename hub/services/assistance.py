"""Assistance granted (幸福清单): departments report what they granted a household; every department with a case
for that household sees the list across departments, so aid is neither missed nor paid twice."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from consent import ledger
from core.store import AssistanceGrant, Request, session, utcnow
from hub.rules.policy import open_case, open_request

GRANT_FIELDS = ("id", "department", "programme", "granted_from", "granted_until", "monthly_amount", "reported_at")  # what a read returns


class NotYourHousehold(LookupError):
    """The department has no request for that household and programme (the same answer whether it exists or not)."""


def report(*, household_ref: str, department: str, client_id: str, programme: str, granted_from: dt.date,
           granted_until: dt.date | None = None, request_id: str | None = None,
           monthly_amount_fen: int | None = None) -> str:
    """Record assistance the department granted, when the household authorized that department for the programme's
    purpose and the authorization holds now; else NotYourHousehold, after a ``record.read_denied`` ledger entry
    (reporting a grant under another purpose is a way to switch purposes). The grant opens no read of its own."""
    if granted_until is not None and granted_until < granted_from:
        raise ValueError("granted_until is before granted_from")
    if monthly_amount_fen is not None and not 0 <= monthly_amount_fen <= 100_000_000:
        raise ValueError("monthly_amount: from 0 to 1,000,000 yuan")
    with session() as s:
        backing = open_request(s, department, household_ref, utcnow(), purpose=programme)
        if backing is not None and request_id is not None:
            req = s.get(Request, request_id)
            if req is None or req.department != department or req.household_ref != household_ref or \
                    req.purpose != programme:
                backing = None
        if backing is None:
            ledger.append(s, "record.read_denied", {"client_id": client_id, "department": department,
                                                    "purpose": programme, "household_ref": household_ref[:40],
                                                    "what": "assistance.report", "why": "no_open_case"})
    if backing is None:
        raise NotYourHousehold(household_ref)
    with session() as s:
        grant = AssistanceGrant(id=uuid.uuid4().hex, household_ref=household_ref, department=department,
                                programme=programme, request_id=request_id or backing, granted_from=granted_from,
                                granted_until=granted_until, monthly_amount_fen=monthly_amount_fen,
                                client_id=client_id)
        s.add(grant)
        ledger.append(s, "assistance.reported", {"grant_id": grant.id, "household_ref": household_ref,
                                                 "department": department, "programme": programme,
                                                 "request_id": grant.request_id,
                                                 "granted_from": granted_from.isoformat(),
                                                 "granted_until": granted_until.isoformat() if granted_until else None})
        return grant.id


def household_list(household_ref: str, *, department: str, client_id: str, purpose: str) -> list[AssistanceGrant]:
    """Every department's grants for the household, for a department with an open case for it under that purpose
    (hub.rules.policy.open_case); a ledger entry either way."""
    with session() as s:  # reads only: the entries go through the ledger's group commit, durable before answering
        basis = open_case(s, department, household_ref, purpose, utcnow())
        grants = [] if basis is None else s.scalars(
            select(AssistanceGrant).where(AssistanceGrant.household_ref == household_ref)
            .order_by(AssistanceGrant.granted_from, AssistanceGrant.id)).all()
        s.expunge_all()
    if basis is None:
        ledger.append_durable("record.read_denied", {"client_id": client_id, "department": department,
                                                     "purpose": purpose, "household_ref": household_ref,
                                                     "what": "assistance", "why": "no_open_case"})
        raise NotYourHousehold(household_ref)
    ledger.append_durable("assistance.read", {"household_ref": household_ref, "department": department,
                                              "client_id": client_id, "purpose": purpose, "grants": len(grants),
                                              "basis": basis, "fields": list(GRANT_FIELDS)})
    return grants
