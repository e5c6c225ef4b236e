"""What the gate will refuse under an authorization that is not given yet: the caseworker's forms step shows, per
member, which sources will be refused and why, before the request is made.

The preview builds the gate's own view of the draft authorization (as consent.authorizations.views builds it of a
stored one) and asks consent.gate.check for every member and source, so the preview and the fetches cannot disagree
on a rule. It is pure: the view lives in memory only, keyed by the ID numbers themselves, and nothing is stored,
logged or recorded in the ledger.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

from consent.authorizations import adult_from, parse_moment
from consent.gate import AuthorizationView, MemberConsent, Reason, check

DRAFT = "draft"  # the id, department and purpose of a draft's view: it is checked against itself


def _id(value) -> str:
    return value.strip().upper() if isinstance(value, str) else ""


def draft_view(doc: dict) -> AuthorizationView:
    """The gate's view of a draft authorization document (consent.authorizations' shape): each consent's member with
    their sources, whether they signed, their guardian and their separate financial consent."""
    problems: list[str] = []
    start = parse_moment(doc.get("valid_from"), "valid_from", problems) or dt.datetime.now(dt.timezone.utc)
    end = parse_moment(doc.get("valid_until"), "valid_until", problems) or start + dt.timedelta(days=1)
    members: dict[str, MemberConsent] = {}
    for c in doc.get("consents") or ():
        idn = _id(c.get("id_number"))
        try:
            adult = adult_from(idn)
        except ValueError:  # not an ID number: not named here (refused everything); the intake says what is wrong
            continue
        fin = c.get("financial_consent") or {}
        members[idn] = MemberConsent(
            person_ref=idn, sources=frozenset(c.get("sources") or ()), adult_from=adult,
            own_evidence=bool(c.get("evidence_sha256")), guardian_ref=_id(c.get("guardian_id_number")) or None,
            financial_sources=frozenset(fin.get("sources") or ()) if fin.get("evidence_sha256") else frozenset())
    return AuthorizationView(id=DRAFT, department=DRAFT, purpose=DRAFT, valid_from=start, valid_until=end,
                             members=members)


def refusals(doc: dict, member_ids: Iterable[str], sources: Iterable[str],
             moment: dt.datetime | None = None) -> dict[str, dict[str, Reason]]:
    """For each of ``member_ids``: the sources the gate will refuse under the draft ``doc`` and the gate's reason
    (a member the draft does not name is refused every source: MEMBER_NOT_NAMED). ``moment`` defaults to the
    draft's valid_from, when the verification starts. Members with nothing refused map to an empty dict."""
    view = draft_view(doc)
    at = moment or view.valid_from
    sources = list(dict.fromkeys(sources))
    out: dict[str, dict[str, Reason]] = {}
    for idn in map(_id, member_ids):
        reasons = {s: check(view, idn, s, DRAFT, DRAFT, at) for s in sources}
        out[idn] = {s: r for s, r in reasons.items() if r is not Reason.ALLOWED}
    return out
