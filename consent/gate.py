"""The consent gate: may the hub fetch this person's data from this source, for this purpose, now?

``decide`` is a pure function of (person, source, purpose, moment, authorizations). It returns an
``Allow`` carrying its basis, or a ``Refuse`` carrying a reason code. Only this module can make an
``Allow``: connectors take ``Allow`` values as arguments, so a fetch without an allow decision cannot be
expressed (see connectors.base).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Iterable, Union

_GATE = object()  # capability: only decide() holds it


class Reason(str, enum.Enum):
    ALLOWED = "ALLOWED"
    NO_AUTHORIZATION = "NO_AUTHORIZATION"  # no authorization names this person
    WRONG_PURPOSE = "WRONG_PURPOSE"  # authorizations exist, none for this purpose
    SOURCE_NOT_IN_SCOPE = "SOURCE_NOT_IN_SCOPE"  # none covers this source
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


@dataclass(frozen=True)
class AuthorizationView:
    """What the gate needs to know of a stored authorization (no personal data)."""

    id: str
    person_ref: str
    purpose: str
    sources: frozenset[str]
    valid_from: dt.datetime
    valid_until: dt.datetime
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
    allowed = False
    authorization_id = None


Decision = Union[Allow, Refuse]

# When several authorizations fail for different reasons, report the one closest to being valid.
_PRECEDENCE = [
    Reason.REVOKED,
    Reason.EXPIRED,
    Reason.NOT_YET_VALID,
    Reason.SOURCE_NOT_IN_SCOPE,
    Reason.WRONG_PURPOSE,
    Reason.NO_AUTHORIZATION,
]


def _check(auth: AuthorizationView, source: str, purpose: str, moment: dt.datetime) -> Reason:
    if auth.purpose != purpose:
        return Reason.WRONG_PURPOSE
    if source not in auth.sources:
        return Reason.SOURCE_NOT_IN_SCOPE
    if auth.revoked_at is not None and auth.revoked_at <= moment:
        return Reason.REVOKED
    if moment < auth.valid_from:
        return Reason.NOT_YET_VALID
    if moment >= auth.valid_until:
        return Reason.EXPIRED
    return Reason.ALLOWED


def decide(
    person_ref: str,
    source: str,
    purpose: str,
    moment: dt.datetime,
    authorizations: Iterable[AuthorizationView],
) -> Decision:
    if moment.tzinfo is None:
        raise ValueError("the gate needs an aware moment")
    reasons = []
    for auth in authorizations:
        if auth.person_ref != person_ref:
            continue
        reason = _check(auth, source, purpose, moment)
        if reason is Reason.ALLOWED:
            return Allow(person_ref, source, purpose, moment, auth.id, _token=_GATE)
        reasons.append(reason)
    best = min(reasons, key=_PRECEDENCE.index) if reasons else Reason.NO_AUTHORIZATION
    return Refuse(person_ref, source, purpose, moment, best)
