"""The consent gate: may the hub fetch this person's data from this source, for this purpose and this
department, now?

``decide`` is a pure function of (person, source, purpose, department, moment, authorizations). It returns an
``Allow`` carrying its basis, or a ``Refuse`` carrying a reason code. Only this module can make an
``Allow``: connectors take ``Allow`` values as arguments, so a fetch without an allow decision cannot be
expressed (see connectors.base).

An authorization (个人授权) is household-level: it names its members, each with the sources they consented
to, their own evidence (adults) or a guardian's cover (minors), and, for the financial sources, a separate
explicit consent (PIPL Art. 28-29). It was given in an entrustment (单位委托) by one department for one
purpose, within a validity window, and can be revoked whole, per member, or per member and source.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Union

from schemas.sources import FINANCIAL_SOURCES

_GATE = object()  # capability: only decide() holds it


class Reason(str, enum.Enum):
    ALLOWED = "ALLOWED"
    NO_AUTHORIZATION = "NO_AUTHORIZATION"  # nothing was authorized in this entrustment
    WRONG_DEPARTMENT = "WRONG_DEPARTMENT"  # the authorization was given to another department
    WRONG_PURPOSE = "WRONG_PURPOSE"  # ... for another purpose
    MEMBER_NOT_NAMED = "MEMBER_NOT_NAMED"  # the person is not among its members
    REVOKED = "REVOKED"  # revoked whole, for the member, or for this member and source
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    SOURCE_NOT_IN_SCOPE = "SOURCE_NOT_IN_SCOPE"  # the member did not consent to this source
    FINANCIAL_CONSENT_MISSING = "FINANCIAL_CONSENT_MISSING"  # financial source without the separate consent
    MINOR_WITHOUT_GUARDIAN = "MINOR_WITHOUT_GUARDIAN"  # a minor not covered by an adult member's consent
    ADULT_WITHOUT_OWN_CONSENT = "ADULT_WITHOUT_OWN_CONSENT"  # an adult (now) covered only by a guardian


@dataclass(frozen=True)
class MemberConsent:
    """One member's part of an authorization (no personal data: pseudonym, dates, hashes)."""

    person_ref: str
    sources: frozenset[str]
    adult_from: dt.date  # the 18th birthday
    own_evidence: bool = True  # the member signed (form hash or e-signature)
    guardian_ref: str | None = None  # the adult member whose consent covers this minor
    financial_sources: frozenset[str] = frozenset()  # sources of the separate financial consent
    revoked_at: dt.datetime | None = None
    revoked_sources: Mapping[str, dt.datetime] = field(default_factory=dict)

    def adult_on(self, day: dt.date) -> bool:
        return day >= self.adult_from


@dataclass(frozen=True)
class AuthorizationView:
    """What the gate needs to know of a stored authorization."""

    id: str
    department: str
    purpose: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    members: Mapping[str, MemberConsent]
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True)
class Allow:
    person_ref: str
    source: str
    purpose: str
    moment: dt.datetime
    authorization_id: str
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _GATE:
            raise TypeError("an Allow decision can only be made by consent.gate.decide()")

    allowed = True
    reason = Reason.ALLOWED


@dataclass(frozen=True)
class Refuse:
    person_ref: str
    source: str
    purpose: str
    moment: dt.datetime
    reason: Reason
    authorization_id: str | None = None  # the authorization that came closest, if any
    allowed = False


Decision = Union[Allow, Refuse]

# When several authorizations fail for different reasons, report the one that came closest to allowing.
_CLOSEST_FIRST = [
    Reason.FINANCIAL_CONSENT_MISSING,
    Reason.MINOR_WITHOUT_GUARDIAN,
    Reason.ADULT_WITHOUT_OWN_CONSENT,
    Reason.SOURCE_NOT_IN_SCOPE,
    Reason.EXPIRED,
    Reason.NOT_YET_VALID,
    Reason.REVOKED,
    Reason.MEMBER_NOT_NAMED,
    Reason.WRONG_PURPOSE,
    Reason.WRONG_DEPARTMENT,
    Reason.NO_AUTHORIZATION,
]


def _revoked(at: dt.datetime | None, moment: dt.datetime) -> bool:
    return at is not None and at <= moment


def check(auth: AuthorizationView, person_ref: str, source: str, purpose: str, department: str,
          moment: dt.datetime) -> Reason:
    """The reason one authorization gives for (person, source, purpose, department, moment)."""
    if auth.department != department:
        return Reason.WRONG_DEPARTMENT
    if auth.purpose != purpose:
        return Reason.WRONG_PURPOSE
    member = auth.members.get(person_ref)
    if member is None:
        return Reason.MEMBER_NOT_NAMED
    if _revoked(auth.revoked_at, moment) or _revoked(member.revoked_at, moment) or \
            _revoked(member.revoked_sources.get(source), moment):
        return Reason.REVOKED
    if moment < auth.valid_from:
        return Reason.NOT_YET_VALID
    if moment >= auth.valid_until:
        return Reason.EXPIRED
    if source not in member.sources:
        return Reason.SOURCE_NOT_IN_SCOPE
    if source in FINANCIAL_SOURCES and source not in member.financial_sources:
        return Reason.FINANCIAL_CONSENT_MISSING
    today = moment.date()
    if member.adult_on(today):
        if not member.own_evidence:
            return Reason.ADULT_WITHOUT_OWN_CONSENT
    else:
        guardian = auth.members.get(member.guardian_ref) if member.guardian_ref else None
        if guardian is None or not guardian.adult_on(today) or not guardian.own_evidence or \
                _revoked(guardian.revoked_at, moment):
            return Reason.MINOR_WITHOUT_GUARDIAN
    return Reason.ALLOWED


def decide(
    person_ref: str,
    source: str,
    purpose: str,
    department: str,
    moment: dt.datetime,
    authorizations: Iterable[AuthorizationView],
) -> Decision:
    if moment.tzinfo is None:
        raise ValueError("the gate needs an aware moment")
    best: tuple[Reason, str | None] = (Reason.NO_AUTHORIZATION, None)
    for auth in authorizations:
        reason = check(auth, person_ref, source, purpose, department, moment)
        if reason is Reason.ALLOWED:
            return Allow(person_ref, source, purpose, moment, auth.id, _token=_GATE)
        if _CLOSEST_FIRST.index(reason) < _CLOSEST_FIRST.index(best[0]):
            best = (reason, auth.id)
    return Refuse(person_ref, source, purpose, moment, best[0], best[1])
