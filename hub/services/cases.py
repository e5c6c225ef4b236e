"""A department's case for a household, as the head of the record it reads: the case number (业务编号), the
applicant and the members the department named, by the pseudonyms the department reads them under.

A record names its members by pseudonym, re-keyed per department (hub.rules.policy.scope_persons); the department
that entrusted the verification knows those people, so its console may show their names and masked ID numbers
(never the whole number) beside what the record says of them. The case is the one the read rests on: the
department's own request for the household and purpose whose authorization holds now (hub.rules.policy).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from core.crypto import keyring
from core.store import (
    Authorization,
    AuthorizationMember,
    Request,
    RequestMember,
    SignedForm,
    aad_member,
    session,
    utcnow,
)
from hub.rules import policy
from schemas.codes import mask_id


@dataclass(frozen=True)
class CaseMember:
    """A member the department named, as its caseworker may see them."""

    name: str
    id_number_masked: str
    relation: str


@dataclass(frozen=True)
class CaseHead:
    request_id: str
    case_ref: str  # the department's own case number
    department: str
    purpose: str
    created_at: dt.datetime
    applicant: CaseMember | None  # whose ID number and signed form started the case, when the hub can tell
    members: dict[str, CaseMember]  # by the pseudonym the department reads the member under


def case_head(department: str, household_ref: str, purpose: str) -> CaseHead | None:
    """The department's open case for the household and purpose, or None (no case: nothing to name)."""
    keys = keyring()
    scope = f"department:{department}"
    with session() as s:
        request_id = policy.open_request(s, department, household_ref, utcnow(), purpose)
        if request_id is None:
            return None
        req = s.get(Request, request_id)
        application = req.parent_id or req.id
        rows = s.scalars(select(RequestMember).where(RequestMember.request_id == req.id)
                         .order_by(RequestMember.id)).all()
        members: dict[str, CaseMember] = {}
        by_ref: dict[str, CaseMember] = {}
        for m in rows:
            idn = keys.decrypt(m.id_number_enc, aad=aad_member(req.id, "id_number_enc", m.person_ref))
            member = CaseMember(name=keys.decrypt(m.name_enc, aad=aad_member(req.id, "name_enc", m.person_ref)),
                                id_number_masked=mask_id(idn), relation=m.relation)
            by_ref[m.person_ref] = member
            members[keys.scoped(m.person_ref, scope)] = member
        # the applicant: the member whose own signed form is the one the case's household lookup kept (一证通办)
        forms = select(SignedForm.sha256).where(SignedForm.department == req.department,
                                                SignedForm.case_ref == req.case_ref)
        signed = s.scalars(select(AuthorizationMember.person_ref)
                           .join(Authorization, Authorization.id == AuthorizationMember.authorization_id)
                           .where(Authorization.request_id.in_({req.id, application}),
                                  AuthorizationMember.evidence_sha256.in_(forms))).first()
        applicant = by_ref.get(signed) if signed else None
        if applicant is None:  # a request sent through the JSON API: its head of household
            applicant = next((m for m in by_ref.values() if m.relation == "head"), None)
        return CaseHead(request_id=req.id, case_ref=req.case_ref, department=req.department, purpose=req.purpose,
                        created_at=req.created_at, applicant=applicant, members=members)
