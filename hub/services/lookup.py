"""一证通办: a household's members from household registration (公安户籍), given one member's resident ID number.

A caseworker starts a verification request from the applicant's ID number, the department's case number and the
applicant's signed authorization form itself: a PDF, JPEG or PNG of FORM_MIN_BYTES to FORM_MAX_BYTES whose bytes are
what its media type says. A bare hash is not accepted (when one comes with the form, it must be the form's). The
form is stored encrypted (core.store.SignedForm, bound to its row) before household registration is asked; its
SHA-256 and the case number are in the lookup's ledger entry. The members are filled in from the
household-registration agency's 户成员查询.

A department makes at most HUB_LOOKUP_PER_HOUR lookups (default 30) within any hour: its signed forms stored within
the last hour are its lookups of the hour, counted in the store together with the new form's row, in one transaction
under a per-department lock (core.store.exclusive_session), so the limit holds across the API's worker processes.

Every lookup is one ledger entry (kind ``household.lookup``) holding pseudonyms and hashes only, with its outcome:
``found``, ``not_found`` or ``unavailable`` (household registration was asked, or tried), ``refused`` (the input
was not acceptable: ``why`` names the field; nothing asked) or ``rate_limited`` (nothing asked). Errors name the
problem, never an ID number or a name.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import math
import re
import uuid
from dataclasses import dataclass, field

import requests
from sqlalchemy import select

from connectors import registry
from connectors.base import AgencyError, Failure, Policy
from consent import ledger
from core.crypto import keyring
from core.settings import settings
from core.store import SignedForm as SignedFormRow
from core.store import aad_signed_form, exclusive_session, session, utcnow
from hub.stages.intake import DEPARTMENT_CODE, PURPOSES
from schemas.codes import PERSON_STATUS, RELATIONS, SEX, is_valid_id

log = logging.getLogger(__name__)

SOURCE = "household"
LEDGER_KIND = "household.lookup"
# a caseworker waits for the answer: a tighter bound than a pipeline fetch's
POLICY = Policy(read_timeout=10.0, deadline=30.0)
FORM_TYPES = {"application/pdf": "PDF", "image/jpeg": "JPEG", "image/png": "PNG"}
FORM_MIN_BYTES = 1024  # smaller is no scan of a signed page
FORM_MAX_BYTES = 5 * 1024 * 1024
# the largest JSON body of a lookup over the API: the form as base64 (a third more), and room for the other fields
MAX_BODY_BYTES = 4 * -(-FORM_MAX_BYTES // 3) + 64 * 1024
WINDOW = dt.timedelta(hours=1)  # the rate limit's rolling window
_DIGITS = re.compile(r"\d{17}[\dXx]")


class BadLookup(ValueError):
    """The lookup's input is not acceptable; ``field`` names it, the message too, never its value."""

    def __init__(self, field_: str, problem: str):
        self.field = field_
        super().__init__(f"{field_}: {problem}")


class RateLimited(RuntimeError):
    """The department made its HUB_LOOKUP_PER_HOUR lookups within the last hour; one frees in ``retry_after`` s."""

    def __init__(self, limit: int, retry_after: int):
        self.limit, self.retry_after = limit, retry_after
        super().__init__(f"the department made {limit} household lookups within the last hour: "
                         f"retry after {retry_after} s")


class NotRegistered(LookupError):
    """Household registration does not know the person."""


class LookupUnavailable(RuntimeError):
    """Household registration could not be asked, or its answer could not be used; ``failure`` says how."""

    def __init__(self, failure: str):
        self.source, self.failure = SOURCE, failure
        super().__init__(f"{SOURCE}: {failure}")


@dataclass(frozen=True)
class SignedForm:
    """The applicant's signed authorization form as the department sent it: the document and its media type
    (``content`` None: what was sent could not be decoded, see form_from_base64)."""

    media_type: str
    content: bytes | None = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class Member:
    """One member of the household as household registration knows them."""

    id_number: str = field(repr=False)
    name: str = field(repr=False)
    sex: str  # male | female
    birth_date: dt.date
    relation: str  # to the head: head, spouse, son, daughter, grandchild, parent, other
    status: str  # normal | deceased | moved_out


def _case_ref_ok(case_ref) -> bool:
    """A request's case_ref shape (hub.stages.intake), holding no ID number (it goes into the ledger)."""
    return (isinstance(case_ref, str) and 0 < len(case_ref) <= 64 and "\x00" not in case_ref
            and not any(is_valid_id(m.upper()) for m in _DIGITS.findall(case_ref)))


def _check(id_number, purpose, case_ref) -> str:
    """The normalized ID number, or BadLookup naming the first problem."""
    if not isinstance(id_number, str) or not is_valid_id(id_number.strip().upper()):
        raise BadLookup("id_number", "not a valid resident ID number (format, birth date or check character)")
    if not isinstance(purpose, str) or purpose not in PURPOSES:
        raise BadLookup("purpose", f"one of {', '.join(PURPOSES)}")
    if not _case_ref_ok(case_ref):
        raise BadLookup("case_ref", "the department's case number (1 to 64 characters, no ID number) is required")
    return id_number.strip().upper()


def _is_what_it_says(media_type: str, data: bytes) -> bool:
    """Whether the bytes are a document of the media type: its signature (magic bytes) and, for a PDF, its end."""
    if media_type == "application/pdf":
        return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
    if media_type == "image/jpeg":
        return data[:3] == b"\xff\xd8\xff"
    if media_type == "image/png":
        return data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return False


def check_form(form: SignedForm | None) -> str:
    """The signed form's SHA-256, or BadLookup: no form, an unknown media type, a size out of bounds, or bytes that
    are not what the media type says."""
    if isinstance(form, SignedForm) and form.content is None:
        raise BadLookup("signed_form.content_base64", "not base64 (RFC 4648, standard alphabet, padded)")
    if not isinstance(form, SignedForm) or not isinstance(form.content, bytes) or not form.content:
        raise BadLookup("signed_form", "the applicant's signed authorization form itself (a PDF, JPEG or PNG) is "
                                       "required; a hash alone is not accepted")
    if form.media_type not in FORM_TYPES:
        raise BadLookup("signed_form.media_type", f"one of {', '.join(FORM_TYPES)}")
    if not FORM_MIN_BYTES <= len(form.content) <= FORM_MAX_BYTES:
        raise BadLookup("signed_form", f"from {FORM_MIN_BYTES} bytes (1 KiB) to {FORM_MAX_BYTES} bytes (5 MiB)")
    if not _is_what_it_says(form.media_type, form.content):
        raise BadLookup("signed_form", f"the document is not a {FORM_TYPES[form.media_type]} file, as its media "
                                       f"type says")
    return form.sha256


def form_from_base64(media_type: str, content_base64: str) -> SignedForm:
    """A signed form sent as base64 (RFC 4648, standard alphabet, padded); its content None when it is not base64
    (household_members refuses it, as a lookup refused for its signed form)."""
    try:
        content = base64.b64decode(content_base64, validate=True)
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        content = None
    return SignedForm(media_type=media_type, content=content)


def stored_form(form_id: str) -> SignedForm:
    """A stored signed form, decrypted (LookupError when there is none)."""
    with session() as s:
        row = s.get(SignedFormRow, form_id)
        if row is None:
            raise LookupError("no such signed form")
        content = keyring().decrypt_bytes(row.content_enc, aad=aad_signed_form(row.id))
        return SignedForm(media_type=row.media_type, content=content)


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


class _Full(Exception):
    def __init__(self, wait: dt.timedelta):
        self.wait = wait


def _store_within_limit(row: SignedFormRow, limit: int) -> None:
    """Store the form as the department's lookup of now, or raise _Full (nothing stored) when the department
    already made ``limit`` lookups within the last hour. The count and the insert are one transaction that no
    other lookup of the department interleaves, in any process (core.store.exclusive_session: the department's
    advisory lock on PostgreSQL, the database's write lock on SQLite)."""
    with exclusive_session(lock=f"household-lookup:{row.department}") as s:
        earlier = s.scalars(select(SignedFormRow.created_at)
                            .where(SignedFormRow.department == row.department,
                                   SignedFormRow.created_at > row.created_at - WINDOW)
                            .order_by(SignedFormRow.created_at)).all()
        if len(earlier) >= limit:  # the next lookup frees when the one `limit` places back leaves the window
            raise _Full(earlier[len(earlier) - limit] + WINDOW - row.created_at)
        s.add(row)


def household_members(id_number: str, *, department: str, client_id: str, purpose: str, case_ref: str,
                      signed_form: SignedForm | None, evidence_sha256: str | None = None) -> list[Member]:
    """Every member of the applicant's household, normal status first (deceased and moved-out members kept, with
    their status). Raises BadLookup (nothing asked; a ledger entry ``refused``, unless the department or client is
    malformed), RateLimited (nothing asked; a ledger entry ``rate_limited``), NotRegistered or LookupUnavailable
    (both after their ledger entry)."""
    if not isinstance(department, str) or not DEPARTMENT_CODE.fullmatch(department) or is_valid_id(department):
        raise BadLookup("department", "a department code (capital letters, digits, '-') is required")
    if not isinstance(client_id, str) or not client_id.strip():
        raise BadLookup("client_id", "required")
    keys = keyring()
    lookup_id = uuid.uuid4().hex
    idn_given = id_number.strip().upper() if isinstance(id_number, str) else ""
    # what the entry may say about input not yet checked: only what holds no personal data
    known_purpose = isinstance(purpose, str) and purpose in PURPOSES
    payload = {"lookup_id": lookup_id, "source": SOURCE,
               "applicant_ref": keys.pseudonym(idn_given) if is_valid_id(idn_given) else None, "member_refs": [],
               "department": department, "client_id": client_id, "purpose": purpose if known_purpose else None,
               "case_ref": case_ref if _case_ref_ok(case_ref) else None, "evidence_sha256": None,
               "signed_form_id": None, "outcome": "unavailable", "failure": None}
    try:
        idn = _check(id_number, purpose, case_ref)
        payload["evidence_sha256"] = sha = check_form(signed_form)
        if evidence_sha256 is not None and (not isinstance(evidence_sha256, str)
                                            or evidence_sha256.strip().lower() != sha):
            raise BadLookup("evidence_sha256", "is not the SHA-256 of the signed form (send the form; the hash is "
                                               "optional)")
    except BadLookup as exc:
        _record({**payload, "outcome": "refused", "why": exc.field})
        raise
    limit = settings().lookup_per_hour
    form_id = uuid.uuid4().hex
    content_enc = keys.encrypt_bytes(signed_form.content, aad=aad_signed_form(form_id))
    row = SignedFormRow(id=form_id, sha256=sha, media_type=signed_form.media_type, size=len(signed_form.content),
                        content_enc=content_enc, department=department, case_ref=case_ref, lookup_id=lookup_id,
                        created_at=utcnow())
    try:
        _store_within_limit(row, limit)
    except _Full as full:
        wait = max(1, math.ceil(full.wait.total_seconds()))
        _record({**payload, "outcome": "rate_limited", "limit": limit})
        log.warning("household lookup %s refused: department %s is over %d lookups per hour", lookup_id,
                    department, limit)
        raise RateLimited(limit, wait) from None
    payload["signed_form_id"] = form_id
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
