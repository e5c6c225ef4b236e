"""Department requests (单位委托) with the household's authorization (个人授权): checked, then stored encrypted.

A request names the department, purpose, case number, sources and members; its ``authorization`` (optional: a
request may wait for it, see `hub consent grant`) follows consent.authorizations. Instead of an authorization, a
request may ask its members to sign on their phones (``mobile_signing``: the terms, hub.stages.signing): it then
waits, status ``signing``, until every member has signed or declined (hub.services.residents).

Errors name the field and the member's position, never an ID number or a name.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from connectors.dci_remote import PeersError
from consent import ledger
from consent.authorizations import check_authorization, store_authorization
from core.crypto import keyring
from core.ids import DEPARTMENT
from core.store import Request, RequestMember, aad_member, session
from hub.federation.client import member_id_numbers
from hub.federation.config import peers
from hub.federation.sources import KEYS as FETCHABLE
from hub.stages.pipeline import RequestNotFound
from hub.stages.signing import check_terms, open_signing
from schemas.codes import birth_date_from_id, is_valid_id
from schemas.suite import has_suite
from schemas.vocabulary import PURPOSES, RELATIONS, SOURCE_KEYS

# a source is requested only when the hub can both fetch it and validate what comes back
VERIFIABLE = [k for k in FETCHABLE if has_suite(k)]
DEPARTMENT_CODE = re.compile(DEPARTMENT)
CHINA = dt.timezone(dt.timedelta(hours=8))  # the calendar of the birth dates in ID numbers (no summer time)


def _peers_problem() -> list[str]:
    """Why the source remote_registry cannot be asked (no peers configured, or their file unreadable), if so."""
    try:
        return [] if peers() else ["sources: remote_registry needs federated peers (HUB_DCI_PEERS)"]
    except PeersError:
        return ["sources: remote_registry: the peers file (HUB_DCI_PEERS) cannot be used"]


class InvalidRequest(ValueError):
    """The request document is not acceptable; ``problems`` lists every reason (no personal data)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def check_request(doc: dict, department: str | None = None) -> list[str]:
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["the request must be a JSON object"]
    dept = department or doc.get("department")
    # fullmatch: "$" lets "MZ-1\n" through; an ID number is no department code (and the ledger refuses it)
    if not isinstance(dept, str) or not DEPARTMENT_CODE.fullmatch(dept) or is_valid_id(dept):
        problems.append("department: a department code (capital letters, digits, '-') is required")
    if not isinstance(doc.get("purpose"), str) or doc["purpose"] not in PURPOSES:  # a list is not hashable
        problems.append(f"purpose: one of {', '.join(PURPOSES)}")
    if not isinstance(doc.get("case_ref"), str) or not 0 < len(doc["case_ref"]) <= 64 or "\x00" in doc["case_ref"]:
        problems.append("case_ref: the department's case number (1 to 64 characters) is required")
    sources = doc.get("sources")
    if not isinstance(sources, list) or not sources or not all(s in VERIFIABLE for s in sources):
        problems.append(f"sources: a non-empty list of the sources the hub verifies ({', '.join(VERIFIABLE)})")
    elif "remote_registry" in sources:
        problems += _peers_problem()
    members = doc.get("members")
    ids: list[str] = []
    if not isinstance(members, list) or not 1 <= len(members) <= 20:
        problems.append("members: a list of 1 to 20 family members is required")
        members = []
    for i, m in enumerate(members):  # i as the JSON array index: members[0] is the first
        if not isinstance(m, dict):
            problems.append(f"members[{i}]: must be an object")
            continue
        if not is_valid_id(m.get("id_number")):
            problems.append(f"members[{i}].id_number: not a valid resident ID number (format, date or check character)")
        elif birth_date_from_id(m["id_number"]) > dt.datetime.now(CHINA).date():  # the check character can be right
            problems.append(f"members[{i}].id_number: its birth date is in the future")
        else:
            ids.append(m["id_number"].upper())
        if not isinstance(m.get("name"), str) or not m["name"].strip():
            problems.append(f"members[{i}].name: required")
        if not isinstance(m.get("relation"), str) or m["relation"] not in RELATIONS:
            problems.append(f"members[{i}].relation: one of {', '.join(sorted(RELATIONS))}")
    if len(set(ids)) != len(ids):
        problems.append("members: the same person is named twice")
    auth = doc.get("authorization")
    if auth is not None:
        problems += check_authorization(auth, ids, SOURCE_KEYS)
    if doc.get("mobile_signing") is not None:
        problems += check_terms(doc["mobile_signing"])
        if auth is not None:
            problems.append("mobile_signing: the members sign on their phones, or an authorization is given, not both")
    return problems


def create_request(doc: dict, *, department: str | None = None, client_id: str | None = None) -> str:
    """Store a checked request and its authorizations; return the request id."""
    problems = check_request(doc, department)
    if problems:
        raise InvalidRequest(problems)
    keys = keyring()
    request_id = uuid.uuid4().hex
    dept = department or doc["department"]
    signing = doc.get("mobile_signing") is not None
    with session() as s:
        s.add(
            Request(
                id=request_id,
                department=dept,
                purpose=doc["purpose"],
                case_ref=doc["case_ref"],
                sources=list(dict.fromkeys(doc["sources"])),
                client_id=client_id,
                status="signing" if signing else "received",
            )
        )
        s.flush()
        for m in doc["members"]:
            idn = m["id_number"].upper()
            ref = keys.pseudonym(idn)
            s.add(
                RequestMember(
                    request_id=request_id,
                    person_ref=ref,
                    id_number_enc=keys.encrypt(idn, aad=aad_member(request_id, "id_number_enc", ref)),
                    name_enc=keys.encrypt(m["name"].strip(), aad=aad_member(request_id, "name_enc", ref)),
                    relation=m["relation"],
                )
            )
        ledger.append(
            s,
            "entrustment.received",
            {"request_id": request_id, "department": dept, "purpose": doc["purpose"], "sources": doc["sources"],
             "members": len(doc["members"])},
        )
        if doc.get("authorization") is not None:
            store_authorization(s, request_id=request_id, department=dept, purpose=doc["purpose"],
                                case_ref=doc["case_ref"], doc=doc["authorization"], keys=keys)
        if signing:
            open_signing(s, request_id, doc["mobile_signing"], doc["members"])
    return request_id


def add_authorization(request_id: str, doc: dict) -> str:
    """Add a household's authorization to an existing request (e.g. signed after the request was made)."""
    keys = keyring()
    with session() as s:
        req = s.get(Request, request_id)
        if req is None:
            raise RequestNotFound(f"no request {request_id}")
        ids = list(member_id_numbers(s, request_id).values())
        problems = check_authorization(doc, ids, SOURCE_KEYS)
        if problems:
            raise InvalidRequest(problems)
        return store_authorization(s, request_id=req.id, department=req.department, purpose=req.purpose,
                                   case_ref=req.case_ref, doc=doc, keys=keys).id
