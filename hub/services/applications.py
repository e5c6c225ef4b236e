"""Applications residents start on their phones (申请): for a programme, at a department. The department sees them in
its console and API as pending cases and accepts or declines each with a reason. Accepting is its entrustment (单位委托):
a request is made for the household the application names, and its members are asked to sign on their phones
(码上办, hub.stages.signing); the verification starts when they have answered.

The members are kept encrypted (bound to the application); the ledger names pseudonyms only. A department sees the
applications made to it, nobody else's; a resident their own (as applicant or member).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import Text, cast, or_, select, update

from consent import ledger
from core.crypto import keyring
from core.store import ResidentApplication, ResidentMessage, aad_application, session, utcnow
from hub.services.errors import Conflict, Invalid, NotFound
from hub.stages.intake import VERIFIABLE, InvalidRequest, create_request
from schemas.codes import ANSHAN_DIVISIONS, is_valid_id
from schemas.vocabulary import PURPOSES, RELATIONS

# which kind of department takes an application for each programme (schemas.codes.AGENCY_NAMES)
AGENCY_OF_PURPOSE = {"dibao": "MZ", "low_income": "MZ", "tekun": "MZ", "temporary": "MZ", "medical": "YB",
                     "housing": "ZJ", "education": "JY", "employment": "RS"}
MAX_MEMBERS = 10
SUBMITTED, ACCEPTED, DECLINED = "application.submitted", "application.accepted", "application.declined"


def department_for(programme: str, division: str) -> str:
    """The department that takes ``programme`` in ``division`` (e.g. dibao, 210302 -> MZ-210302)."""
    if programme not in AGENCY_OF_PURPOSE or division not in ANSHAN_DIVISIONS:
        raise Invalid("programme and district: one of the lists")
    return f"{AGENCY_OF_PURPOSE[programme]}-{division}"


@dataclass(frozen=True)
class Member:
    id_number: str
    name: str
    relation: str

    def __repr__(self) -> str:
        return f"Member(relation={self.relation!r})"


def submit(*, applicant_ref: str, applicant: Member, others: list[Member], programme: str, division: str) -> str:
    """A resident's application; the applicant is the signed-in resident (their ID number from the identity
    token), ``others`` the household members they name. Invalid names each problem by position and field."""
    problems = []
    if programme not in PURPOSES:
        problems.append("programme: one of the programmes")
    if division not in ANSHAN_DIVISIONS:
        problems.append("division: one of the districts")
    members = [applicant] + others
    if len(members) > MAX_MEMBERS:
        problems.append(f"members: at most {MAX_MEMBERS}")
    for n, m in enumerate(members):
        if not is_valid_id(m.id_number):
            problems.append(f"members[{n}].id_number: not a valid resident ID number (format, date or check character)")
        if not m.name.strip() or len(m.name) > 64:
            problems.append(f"members[{n}].name: required, up to 64 characters")
        if m.relation not in RELATIONS:
            problems.append(f"members[{n}].relation: one of the relations")
    ids = [m.id_number.upper() for m in members]
    if len(set(ids)) != len(ids):
        problems.append("members: the same person is named twice")
    if problems:
        raise Invalid({"problems": problems}, problems)
    keys = keyring()
    app_id = uuid.uuid4().hex
    department = department_for(programme, division)
    body = json.dumps([{"id_number": m.id_number.upper(), "name": m.name.strip(), "relation": m.relation}
                       for m in members], ensure_ascii=False)
    refs = [keys.pseudonym(i) for i in ids]
    with session() as s:
        s.add(ResidentApplication(id=app_id, applicant_ref=applicant_ref, department=department, programme=programme,
                                  members_enc=keys.encrypt(body, aad=aad_application(app_id)), member_refs=refs,
                                  status="pending", created_at=utcnow()))
        ledger.append(s, SUBMITTED, {"application_id": app_id, "person_ref": applicant_ref, "department": department,
                                     "purpose": programme, "members": refs})
    return app_id


@dataclass(frozen=True)
class ApplicationView:
    id: str
    department: str
    programme: str
    status: str
    reason: str | None
    request_id: str | None
    created_at: object
    decided_at: object
    members: list[dict]  # relation, name, id_number (the department's view); relation only for a resident


def _view(row: ResidentApplication, with_people: bool) -> ApplicationView:
    members = json.loads(keyring().decrypt(row.members_enc, aad=aad_application(row.id)))
    if not with_people:
        members = [{"relation": m["relation"]} for m in members]
    return ApplicationView(id=row.id, department=row.department, programme=row.programme, status=row.status,
                           reason=row.reason, request_id=row.request_id, created_at=row.created_at,
                           decided_at=row.decided_at, members=members)


def for_department(department: str, status: str | None = "pending", limit: int = 100) -> list[ApplicationView]:
    q = select(ResidentApplication).where(ResidentApplication.department == department)
    if status:
        q = q.where(ResidentApplication.status == status)
    with session() as s:
        return [_view(r, True) for r in s.scalars(q.order_by(ResidentApplication.created_at.desc()).limit(limit))]


def of_department(application_id: str, department: str) -> ApplicationView:
    with session() as s:
        row = s.get(ResidentApplication, application_id)
        if row is None or row.department != department:
            raise NotFound("no such application")
        return _view(row, True)


def for_resident(person_ref: str) -> list[ApplicationView]:
    """The applications the resident made or is named in, newest first (no other member's name or number)."""
    named = cast(ResidentApplication.member_refs, Text).contains(f'"{person_ref}"', autoescape=True)  # as JSON text
    with session() as s:
        rows = s.scalars(select(ResidentApplication)
                         .where(or_(ResidentApplication.applicant_ref == person_ref, named))
                         .order_by(ResidentApplication.created_at.desc()).limit(100)).all()
        return [_view(r, False) for r in rows if r.applicant_ref == person_ref or person_ref in (r.member_refs or [])]


def decide(application_id: str, *, department: str, client_id: str, accept: bool, reason: str | None = None,
           case_ref: str | None = None, sources: list[str] | None = None) -> str | None:
    """The department's decision on a pending application of its own: accept (a request with ``mobile_signing``
    is made for its members: returns its id) or decline with a reason. Once only: Conflict when decided."""
    reason = (reason or "").strip() or None
    if not accept and not reason:
        raise Invalid({"problems": ["reason: say why the application is declined"]}, ["reason: required"])
    if reason and len(reason) > 500:
        raise Invalid({"problems": ["reason: up to 500 characters"]}, ["reason: too long"])
    view = of_department(application_id, department)
    now = utcnow()
    with session() as s:  # claimed first: two caseworkers deciding at once make one decision and one Conflict
        took = s.execute(update(ResidentApplication).where(ResidentApplication.id == application_id,
                                                           ResidentApplication.status == "pending").values(
            status="accepted" if accept else "declined", reason=reason, decided_at=now, decided_by=client_id)).rowcount
    if not took:
        raise Conflict("the application was decided already")
    request_id = None
    if accept:
        doc = {"purpose": view.programme, "case_ref": case_ref or f"APP-{application_id[:12]}",
               "sources": sources or [k for k in VERIFIABLE if k != "remote_registry"],
               "members": view.members, "mobile_signing": {}}
        try:
            request_id = create_request(doc, department=department, client_id=client_id)
        except InvalidRequest as exc:
            with session() as s:  # nothing was decided: the application is pending again
                s.execute(update(ResidentApplication).where(ResidentApplication.id == application_id).values(
                    status="pending", reason=None, decided_at=None, decided_by=None))
            raise Invalid({"problems": exc.problems}, exc.problems) from None
    with session() as s:
        row = s.get(ResidentApplication, application_id)
        row.request_id = request_id
        ledger.append(s, ACCEPTED if accept else DECLINED, {
            "application_id": application_id, "department": department, "client_id": client_id,
            "purpose": view.programme, "request_id": request_id, "person_ref": row.applicant_ref})
        s.add(ResidentMessage(person_ref=row.applicant_ref, kind="application.accepted" if accept
                              else "application.declined", request_id=request_id,
                              params={"department": department, "purpose": view.programme, "reason": reason}))
    return request_id
