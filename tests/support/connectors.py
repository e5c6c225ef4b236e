"""What the connector tests share: Allow decisions made by the real gate, a fast policy for connectors."""

from __future__ import annotations

import datetime as dt

from connectors.base import Policy
from consent.gate import AuthorizationView, MemberConsent, decide

NOW = dt.datetime.now(dt.timezone.utc)
DEPARTMENT = "MZ-210302"
FAST = Policy(connect_timeout=1.0, read_timeout=2.0, retries=4, backoff_base=0.01, backoff_cap=0.05, deadline=20.0,
              breaker_threshold=50, breaker_cooldown=30.0)


def allows_for(id_numbers: list[str], source: str):
    """(Allow decisions, person_ref -> ID number) for these persons and this source, from the gate itself."""
    refs = {f"p_{i:032x}": idn for i, idn in enumerate(id_numbers)}
    members = {ref: MemberConsent(ref, frozenset({source}), adult_from=dt.date(1900, 1, 1),
                                  financial_sources=frozenset({source})) for ref in refs}
    auth = AuthorizationView("a1", DEPARTMENT, "dibao", NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1), members)
    return [decide(ref, source, "dibao", DEPARTMENT, NOW, [auth]) for ref in refs], refs
