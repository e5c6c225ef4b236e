"""Authorizations (个人授权): checked, stored with a consent receipt, turned into gate views, revoked, expired.

The authorization document (inside a request, or alone for `hub consent grant`):

    {"valid_from": "2026-11-27T00:00:00+00:00", "valid_until": "2027-05-26T00:00:00+00:00",
     "recheck_interval_days": 90, "data_life_days": 30,
     "consents": [
        {"id_number": "...", "sources": ["household", "tax", "bank"], "evidence_sha256": "<hash of the signed form>",
         "financial_consent": {"sources": ["bank"], "evidence_sha256": "<hash of the separate financial form>"}},
        {"id_number": "<a minor>", "sources": ["household"], "guardian_id_number": "<an adult member>"}]}

Adults (18 or older on valid_from) sign for themselves; a minor is covered by an adult member who signed. The
financial sources (bank, securities, commercial insurance, internet finance) need the separate financial
consent (PIPL Art. 28-29); the gate refuses them otherwise. Problems are reported by position and field, never
with an ID number or a name.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from consent import ledger
from consent.gate import FINANCIAL_SOURCES, AuthorizationView, MemberConsent
from core.crypto import canonical_json, sha256_hex
from core.settings import settings
from core.store import Authorization, AuthorizationExpiry, AuthorizationMember, Request, Revocation, utcnow
from schemas.codes import birth_date_from_id

RECEIPT_SCHEMA = "hub-consent-receipt/1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class AuthorizationProblem(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def parse_moment(value, where: str, problems: list[str]) -> dt.datetime | None:
    if value is None:
        problems.append(f"{where}: required, an ISO 8601 date-time with a time zone offset")
        return None
    if not isinstance(value, str):  # str() would make a moment of a number (1764547200) or a boolean
        kind = ("a boolean" if isinstance(value, bool) else "a number" if isinstance(value, (int, float))
                else "a list" if isinstance(value, list) else "an object")
        problems.append(f"{where}: an ISO 8601 date-time as text, not {kind}")
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"{where}: not an ISO 8601 date-time")
        return None
    if moment.tzinfo is None:
        problems.append(f"{where}: needs a time zone offset")
        return None
    try:
        return moment.astimezone(dt.timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 has no UTC equivalent, nor 9999-12-31T23:59:59-14:00
        problems.append(f"{where}: out of range (no UTC equivalent)")
        return None


def adult_from(id_number: str) -> dt.date:
    born = birth_date_from_id(id_number)
    if born.year > dt.MAXYEAR - 18:  # a check character can be right on a birth date centuries ahead
        return dt.date.max
    try:
        return born.replace(year=born.year + 18)
    except ValueError:  # born on 29 February
        return dt.date(born.year + 18, 3, 1)


def _id(value) -> str:
    """An ID number as named in a document; "" when it is not text (an ID number as a JSON number names nobody)."""
    return value.upper() if isinstance(value, str) else ""


def _days(doc: dict, key: str, default: int, where: str, problems: list[str]) -> int:
    value = doc.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 3650:  # "90", true, 90.0: no
        problems.append(f"{where}.{key}: whole days from 1 to 3650, a JSON integer (not text, a boolean or a "
                        f"fraction)")
        return default
    return value


def check_authorization(doc, member_ids: list[str], known_sources, where: str = "authorization") -> list[str]:
    """Every problem of an authorization document for a household whose members have ``member_ids``."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return [f"{where}: must be an object"]
    start = parse_moment(doc.get("valid_from"), f"{where}.valid_from", problems)
    end = parse_moment(doc.get("valid_until"), f"{where}.valid_until", problems)
    if start and end and end <= start:
        problems.append(f"{where}: valid_until must be after valid_from")
    _days(doc, "recheck_interval_days", 90, where, problems)
    _days(doc, "data_life_days", 30, where, problems)
    consents = doc.get("consents")
    if not isinstance(consents, list) or not consents:
        return problems + [f"{where}.consents: a non-empty list, one entry per member who consents"]
    named = [_id(c.get("id_number")) for c in consents if isinstance(c, dict)]
    signers = {_id(c.get("id_number")) for c in consents
               if isinstance(c, dict) and isinstance(c.get("evidence_sha256"), str)}
    for i, c in enumerate(consents):  # i as the JSON array index: consents[0] is the first
        at = f"{where}.consents[{i}]"
        if not isinstance(c, dict):
            problems.append(f"{at}: must be an object")
            continue
        idn = _id(c.get("id_number"))
        if idn not in member_ids:
            problems.append(f"{at}.id_number: must name one of the members")
            continue
        if named.count(idn) > 1:
            problems.append(f"{at}.id_number: the member is named twice")
        sources = c.get("sources")
        if not isinstance(sources, list) or not sources or not all(s in known_sources for s in sources):
            problems.append(f"{at}.sources: a non-empty list of known sources")
            sources = []
        is_adult = start is None or start.date() >= adult_from(idn)
        evidence = c.get("evidence_sha256")
        guardian = c.get("guardian_id_number")
        if evidence is not None and (not isinstance(evidence, str) or not _HEX64.fullmatch(evidence)):
            problems.append(f"{at}.evidence_sha256: SHA-256 (hex) of the signed form or e-signature")
        if is_adult and evidence is None:
            problems.append(f"{at}: an adult signs for themselves (evidence_sha256)")
        g = _id(guardian)
        if guardian is not None and (g not in member_ids or g == idn):  # stored as a pseudonym: another member
            problems.append(f"{at}.guardian_id_number: a minor needs an adult member's cover")
        elif not is_adult and evidence is None:
            if g not in member_ids or g == idn:
                problems.append(f"{at}.guardian_id_number: a minor needs an adult member's cover")
            elif g not in signers or (start and start.date() < adult_from(g)):
                problems.append(f"{at}.guardian_id_number: the guardian must be an adult member who signed")
        fin = c.get("financial_consent")
        if fin is not None:
            if not isinstance(fin, dict) or not isinstance(fin.get("sources"), list) or \
                    not all(isinstance(f, str) for f in fin["sources"]) or \
                    not set(fin["sources"]) <= FINANCIAL_SOURCES or not set(fin["sources"]) <= set(sources):
                problems.append(f"{at}.financial_consent.sources: financial sources the member also consented to")
            elif not isinstance(fin.get("evidence_sha256"), str) or not _HEX64.fullmatch(fin["evidence_sha256"]):
                problems.append(f"{at}.financial_consent.evidence_sha256: SHA-256 (hex) of the separate consent")
    return problems


def store_authorization(s: Session, *, request_id: str, department: str, purpose: str, case_ref: str, doc: dict,
                        keys) -> Authorization:
    """Store a checked authorization document and its receipt; log it. Inside the caller's transaction."""
    start = parse_moment(doc["valid_from"], "", [])
    end = parse_moment(doc["valid_until"], "", [])
    auth_id = uuid.uuid4().hex
    members = []
    for c in doc["consents"]:
        idn = c["id_number"].upper()
        fin = c.get("financial_consent") or {}
        members.append(AuthorizationMember(
            authorization_id=auth_id, person_ref=keys.pseudonym(idn), adult_from=adult_from(idn),
            evidence_sha256=c.get("evidence_sha256"),
            guardian_ref=keys.pseudonym(c["guardian_id_number"].upper()) if c.get("guardian_id_number") else None,
            sources=list(dict.fromkeys(c["sources"])), financial_sources=list(fin.get("sources", [])),
            financial_evidence_sha256=fin.get("evidence_sha256"),
        ))
    now = utcnow()
    receipt = {
        "schema_version": RECEIPT_SCHEMA,
        "receipt_id": auth_id,
        "consent_timestamp": now.isoformat(),
        "controller": settings().controller,  # HUB_CONTROLLER_NAME, HUB_CONTROLLER_NAME_EN
        "entrustment": {"request_id": request_id, "department": department, "case_ref": case_ref},
        "purpose": {"code": purpose, "legal_basis": "PIPL Art. 13(1)(i) consent; Art. 14 informed, explicit"},
        "validity": {"from": start.isoformat(), "until": end.isoformat()},
        "recheck_interval_days": doc.get("recheck_interval_days", 90),
        "data_life_days": doc.get("data_life_days", 30),
        "principals": [
            {"person_ref": m.person_ref, "basis": "own" if m.evidence_sha256 else "guardian",
             "guardian_ref": m.guardian_ref, "evidence_sha256": m.evidence_sha256, "categories": m.sources,
             "sensitive": ({"categories": m.financial_sources, "evidence_sha256": m.financial_evidence_sha256,
                            "legal_basis": "PIPL Art. 28-29 separate consent"} if m.financial_sources else None)}
            for m in members
        ],
        "revocation": {"how": "a written or electronic withdrawal to the centre; effective from the next fetch"},
    }
    auth = Authorization(id=auth_id, request_id=request_id, department=department, purpose=purpose,
                         valid_from=start, valid_until=end,
                         recheck_interval_days=receipt["recheck_interval_days"],
                         data_life_days=receipt["data_life_days"], receipt=receipt,
                         receipt_sha256=sha256_hex(canonical_json(receipt)), created_at=now)
    s.add(auth)
    s.flush()
    s.add_all(members)
    ledger.append(s, "authorization.granted", {"authorization_id": auth_id, "request_id": request_id,
                                                "receipt_sha256": auth.receipt_sha256, "purpose": purpose,
                                                "department": department, "members": [m.person_ref for m in members],
                                                "valid_from": start.isoformat(), "valid_until": end.isoformat(),
                                                "terms": terms(auth, members)},
                  at=now)
    return auth


def terms(auth: Authorization, members) -> dict:
    """What the ledger vouches for of a stored authorization: every column the gate and the reads rest on (validity,
    purpose, department, data life, each member's scope, evidence, guardian and financial consent), pseudonyms,
    dates and hashes only. ``hub audit verify`` compares the stored rows with it, field by field."""
    return {
        "request_id": auth.request_id, "department": auth.department, "purpose": auth.purpose,
        "valid_from": auth.valid_from.astimezone(dt.timezone.utc).isoformat(),
        "valid_until": auth.valid_until.astimezone(dt.timezone.utc).isoformat(),
        "recheck_interval_days": auth.recheck_interval_days, "data_life_days": auth.data_life_days,
        "receipt_sha256": auth.receipt_sha256,
        "members": {m.person_ref: {"adult_from": m.adult_from.isoformat(), "evidence_sha256": m.evidence_sha256,
                                   "guardian_ref": m.guardian_ref, "sources": list(m.sources),
                                   "financial_sources": list(m.financial_sources),
                                   "financial_evidence_sha256": m.financial_evidence_sha256}
                    for m in sorted(members, key=lambda m: m.person_ref)},
    }


def terms_differences(logged: dict, actual: dict) -> list[str]:
    """The fields of ``actual`` terms that differ from the ``logged`` ones (member fields as ``members.<ref>.<f>``)."""
    out = [k for k in sorted(set(logged) | set(actual)) if k != "members" and logged.get(k) != actual.get(k)]
    lm, am = logged.get("members") or {}, actual.get("members") or {}
    for ref in sorted(set(lm) | set(am)):
        if ref not in am:
            out.append(f"members.{ref} (deleted)")
        elif ref not in lm:
            out.append(f"members.{ref} (added)")
        else:
            out += [f"members.{ref}.{f}" for f in sorted(set(lm[ref]) | set(am[ref])) if lm[ref].get(f) != am[ref].get(f)]
    return out


def views(s: Session, request_id: str) -> list[AuthorizationView]:
    """The gate's views of every authorization of a request, with their revocations. A re-check
    (``Request.parent_id``) runs under the authorizations of the application it re-checks."""
    return views_many(s, [request_id])[request_id]


def views_many(s: Session, request_ids: list[str]) -> dict[str, list[AuthorizationView]]:
    """``views`` of each of ``request_ids``, in a few statements for all of them (a re-check batch's hundreds of
    households read together, not four reads each)."""
    request_ids = list(dict.fromkeys(request_ids))
    under: dict[str, str] = {}  # request -> the request whose authorizations it runs under
    for start in range(0, len(request_ids), 500):
        for rid, parent in s.execute(select(Request.id, Request.parent_id).where(
                Request.id.in_(request_ids[start: start + 500]))):
            under[rid] = parent or rid
    owners = list(dict.fromkeys(under.get(r, r) for r in request_ids))
    auths: list[Authorization] = []
    for start in range(0, len(owners), 500):
        auths += s.scalars(select(Authorization).where(
            Authorization.request_id.in_(owners[start: start + 500]))).all()
    ids = [a.id for a in auths]
    full: dict[str, dt.datetime] = {}
    member: dict[tuple[str, str], dt.datetime] = {}
    scoped: dict[tuple[str, str], dict[str, dt.datetime]] = {}
    members: dict[str, dict[str, MemberConsent]] = {i: {} for i in ids}
    for start in range(0, len(ids), 500):  # a chunk's revocations, then its members with them
        chunk = ids[start: start + 500]
        for r in s.scalars(select(Revocation).where(Revocation.authorization_id.in_(chunk))):
            if r.person_ref is None:
                full[r.authorization_id] = min(r.revoked_at, full.get(r.authorization_id, r.revoked_at))
            elif r.source is None:
                key = (r.authorization_id, r.person_ref)
                member[key] = min(r.revoked_at, member.get(key, r.revoked_at))
            else:
                by_source = scoped.setdefault((r.authorization_id, r.person_ref), {})
                by_source[r.source] = min(r.revoked_at, by_source.get(r.source, r.revoked_at))
        for m in s.scalars(select(AuthorizationMember).where(AuthorizationMember.authorization_id.in_(chunk))):
            key = (m.authorization_id, m.person_ref)
            members[m.authorization_id][m.person_ref] = MemberConsent(
                person_ref=m.person_ref, sources=frozenset(m.sources), adult_from=m.adult_from,
                own_evidence=m.evidence_sha256 is not None, guardian_ref=m.guardian_ref,
                financial_sources=frozenset(m.financial_sources) if m.financial_evidence_sha256 else frozenset(),
                revoked_at=member.get(key), revoked_sources=scoped.get(key, {}))
    by_owner: dict[str, list[AuthorizationView]] = {}
    for a in auths:
        by_owner.setdefault(a.request_id, []).append(AuthorizationView(
            id=a.id, department=a.department, purpose=a.purpose, valid_from=a.valid_from,
            valid_until=a.valid_until, members=members[a.id], revoked_at=full.get(a.id)))
    return {r: by_owner.get(under.get(r, r), []) for r in request_ids}


def not_revoked(authorization_id, now: dt.datetime):
    """SQL: the authorization (a column or value) was not revoked in full at or before ``now``."""
    return ~exists().where(Revocation.authorization_id == authorization_id, Revocation.person_ref.is_(None),
                           Revocation.revoked_at <= now)


def watermark(s: Session) -> int:
    """The consent watermark: the id of the latest revocation (0 before any). It only grows; a fetch compares it
    before and after each agency call to learn, in one indexed read, whether any consent was withdrawn since its
    decisions were made."""
    return s.scalar(select(func.max(Revocation.id))) or 0


def revoked_since(s: Session, mark: int) -> tuple[int, set[str]]:
    """(the watermark now, the requests whose authorizations lost consent after ``mark``): a re-check's
    application is named, as its authorizations are the application's."""
    rows = s.execute(select(Revocation.id, Authorization.request_id)
                     .join(Authorization, Authorization.id == Revocation.authorization_id)
                     .where(Revocation.id > mark)).all()
    return max([mark, *(r.id for r in rows)]), {r.request_id for r in rows}


class UnknownAuthorization(LookupError):
    pass


def revoke(s: Session, authorization_id: str, *, person_ref: str | None = None, source: str | None = None,
           at: dt.datetime | None = None) -> dict:
    """Revoke a whole authorization, one member's consent, or one member's consent to one source: one appended
    ``revocations`` row and its ledger entry (naming the row), in the caller's transaction. Nothing is updated."""
    at = (at or utcnow()).astimezone(dt.timezone.utc).replace(microsecond=0)
    auth = s.get(Authorization, authorization_id)
    if auth is None:
        raise UnknownAuthorization(f"no authorization {authorization_id}")
    if source is not None and person_ref is None:
        raise ValueError("a source is revoked for one member: name the member too")
    if person_ref is not None and s.scalars(select(AuthorizationMember.id).where(
            AuthorizationMember.authorization_id == auth.id, AuthorizationMember.person_ref == person_ref)).first() is None:
        raise UnknownAuthorization("that person is not a member of this authorization")
    row = Revocation(authorization_id=auth.id, person_ref=person_ref, source=source, revoked_at=at)
    s.add(row)
    s.flush()
    scope = {"authorization_id": auth.id, "request_id": auth.request_id, "person_ref": person_ref, "source": source,
             "scope": "source" if source else "member" if person_ref else "full", "revocation_id": row.id,
             "revoked_at": at.isoformat()}
    ledger.append(s, "authorization.revoked", scope, at=at)
    return scope


def log_expirations(s: Session, now: dt.datetime | None = None) -> int:
    """Record each authorization that has expired, once (an appended ``authorization_expiries`` row)."""
    now = now or utcnow()
    count = 0
    logged = select(AuthorizationExpiry.authorization_id)
    for a in s.scalars(select(Authorization).where(Authorization.valid_until <= now, Authorization.id.not_in(logged))):
        s.add(AuthorizationExpiry(authorization_id=a.id, logged_at=now))
        ledger.append(s, "authorization.expired", {"authorization_id": a.id, "request_id": a.request_id,
                                                    "valid_until": a.valid_until.isoformat()}, at=now)
        count += 1
    return count
