"""一证通办: a household's members from household registration (公安户籍), given one member's resident ID number.

A caseworker starts a verification request from the applicant's ID number and the SHA-256 of the applicant's
signed authorization form; the members are filled in from the household-registration agency's 户成员查询.
Every lookup that reaches the agency, or tries to, is one ledger entry (kind ``household.lookup``) holding
pseudonyms and hashes only. Errors name the problem, never an ID number or a name.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from dataclasses import dataclass, field

import requests

from connectors import registry
from connectors.base import AgencyError, Failure, Policy
from consent import ledger
from hub.config import settings
from hub.crypto import keyring
from hub.intake import _DEPT, PURPOSES
from hub.store import session
from schemas.codes import PERSON_STATUS, RELATIONS, SEX, is_valid_id

log = logging.getLogger(__name__)

SOURCE = "household"
LEDGER_KIND = "household.lookup"
# a caseworker waits for the answer: a tighter bound than a pipeline fetch's
POLICY = Policy(read_timeout=10.0, deadline=30.0)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BadLookup(ValueError):
    """The lookup's input is not acceptable; the message names the field, never its value."""


class NotRegistered(LookupError):
    """Household registration does not know the person."""


class LookupUnavailable(RuntimeError):
    """Household registration could not be asked, or its answer could not be used; ``failure`` says how."""

    def __init__(self, failure: str):
        self.source, self.failure = SOURCE, failure
        super().__init__(f"{SOURCE}: {failure}")


@dataclass(frozen=True)
class Member:
    """One member of the household as household registration knows them."""

    id_number: str = field(repr=False)
    name: str = field(repr=False)
    sex: str  # male | female
    birth_date: dt.date
    relation: str  # to the head: head, spouse, son, daughter, grandchild, parent, other
    status: str  # normal | deceased | moved_out


def _check(id_number: str, department: str, client_id: str, purpose: str, evidence_sha256: str) -> tuple[str, str]:
    """(normalized ID number, normalized evidence hash), or BadLookup naming the first problem."""
    if not isinstance(id_number, str) or not is_valid_id(id_number.strip()):
        raise BadLookup("id_number: not a valid resident ID number (format, birth date or check character)")
    if not isinstance(evidence_sha256, str) or not _SHA256.match(evidence_sha256.strip().lower()):
        raise BadLookup("evidence_sha256: the SHA-256 of the signed authorization form (64 hex characters) is required")
    if not isinstance(department, str) or not _DEPT.match(department):
        raise BadLookup("department: a department code (capital letters, digits, '-') is required")
    if purpose not in PURPOSES:
        raise BadLookup(f"purpose: one of {', '.join(PURPOSES)}")
    if not isinstance(client_id, str) or not client_id.strip():
        raise BadLookup("client_id: required")
    return id_number.strip().upper(), evidence_sha256.strip().lower()


def _members(rows: list[dict], applicant: str) -> list[Member] | None:
    """The rows as members (normal status first, else the agency's order); None when the answer is not usable:
    a row fails its checks, two rows disagree about one person, the rows span households, or the applicant is
    not among them."""
    relations, statuses, sexes = set(RELATIONS.values()), set(PERSON_STATUS.values()), set(SEX.values())
    seen: dict[str, dict] = {}
    for r in rows:
        idn = r.get("id_number")
        if not (isinstance(idn, str) and is_valid_id(idn) and isinstance(r.get("name"), str) and r["name"].strip()
                and all(isinstance(r.get(f), str) for f in ("relation", "status", "sex", "birth_date"))
                and r["relation"] in relations and r["status"] in statuses and r["sex"] in sexes
                and not isinstance(r.get("household_no"), (list, dict))):  # a list is not hashable: no household
            return None
        if idn.upper() in seen and seen[idn.upper()] != r:
            return None
        seen.setdefault(idn.upper(), r)  # an exact duplicate is the same answer twice
    if applicant not in seen or len({r.get("household_no") for r in seen.values()}) != 1:
        return None
    members = []
    for idn, r in seen.items():
        try:
            birth = dt.date.fromisoformat(r["birth_date"])
        except ValueError:
            return None
        members.append(Member(idn, r["name"].strip(), r["sex"], birth, r["relation"], r["status"]))
    return sorted(members, key=lambda m: m.status != "normal")


def _record(payload: dict) -> None:
    with session() as s:
        ledger.append(s, LEDGER_KIND, payload)


def household_members(id_number: str, *, department: str, client_id: str, purpose: str,
                      evidence_sha256: str) -> list[Member]:
    """Every member of the applicant's household, normal status first (deceased and moved-out members kept, with
    their status). Raises BadLookup (nothing asked, nothing logged), NotRegistered or LookupUnavailable (both after
    their ledger entry)."""
    idn, evidence = _check(id_number, department, client_id, purpose, evidence_sha256)
    keys = keyring()
    lookup_id = uuid.uuid4().hex
    payload = {"lookup_id": lookup_id, "source": SOURCE, "applicant_ref": keys.pseudonym(idn), "member_refs": [],
               "department": department, "client_id": client_id, "purpose": purpose, "evidence_sha256": evidence,
               "outcome": "unavailable", "failure": None}
    try:
        base = registry.base_url(SOURCE, settings().agencies_url)
    except (requests.RequestException, ValueError, KeyError):
        payload["failure"] = Failure.UNREACHABLE.value  # the agencies' index did not answer or lacks the source
    else:
        try:
            rows = registry.connector(SOURCE, base, policy=POLICY).members_of(idn, auth_ref=lookup_id)
        except AgencyError as exc:
            payload["failure"] = exc.failure.value
        else:
            if not rows:
                _record({**payload, "outcome": "not_found"})
                raise NotRegistered("household registration does not know this person")
            members = _members(rows, idn)
            if members is None:
                payload["failure"] = Failure.BAD_RESPONSE.value
            else:
                _record({**payload, "outcome": "found", "member_refs": [keys.pseudonym(m.id_number) for m in members]})
                return members
    _record(payload)
    log.warning("household lookup %s unavailable: %s", lookup_id, payload["failure"])
    raise LookupUnavailable(payload["failure"])
