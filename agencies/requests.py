"""Sample requests: what a department would submit for a generated household."""

from __future__ import annotations

import datetime as dt
import hashlib

from agencies.population import household_in_population
from consent.authorizations import adult_from
from schemas.vocabulary import FINANCIAL_SOURCES


def _evidence(*parts) -> str:
    return hashlib.sha256(":".join(map(str, ("signed-form", *parts))).encode()).hexdigest()


def sample_request(
    *,
    seed: int,
    households: int,
    k: int,
    purpose: str = "dibao",
    sources: tuple[str, ...] = ("household",),
    department: str = "MZ-210302",
    today: dt.date | None = None,
    validity_days: int = 180,
) -> dict:
    """A complete, valid request for household ``k``: its living members, and an authorization in which every
    adult signs for all ``sources`` (with the separate financial consent where financial sources are asked for)
    and every minor is covered by the head or another adult."""
    if not 0 <= k < households:
        raise ValueError(f"household {k} is not in a population of {households}")
    hh = household_in_population(seed, households, k)  # the IDs the agencies serve (collisions resolved)
    return request_for(hh, seed=seed, purpose=purpose, sources=sources, department=department, today=today,
                       validity_days=validity_days)


def request_for(hh, *, seed: int, purpose: str = "dibao", sources: tuple[str, ...] = ("household",),
                department: str = "MZ-210302", today: dt.date | None = None, validity_days: int = 180) -> dict:
    """``sample_request`` for a household already taken from ``population(seed, n)`` (its index is ``hh.index``):
    what a benchmark streaming the whole population uses."""
    k = hh.index
    today = today or dt.datetime.now(dt.timezone.utc).date()
    start = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    until = start + dt.timedelta(days=validity_days)
    members = [m for m in hh.members if m.status == "normal"]
    adults = [m for m in members if start.date() >= adult_from(m.id_number)]
    financial = [s for s in sources if s in FINANCIAL_SOURCES]
    consents = []
    for i, m in enumerate(members):
        entry = {"id_number": m.id_number, "sources": list(sources)}
        if m in adults:
            entry["evidence_sha256"] = _evidence(seed, k, i)
        elif adults:
            entry["guardian_id_number"] = adults[0].id_number
        else:
            continue  # a household of minors only: nobody can sign
        if financial:
            entry["financial_consent"] = {"sources": financial, "evidence_sha256": _evidence(seed, k, i, "financial")}
        consents.append(entry)
    return {
        "department": department,
        "purpose": purpose,
        "case_ref": f"DEMO-{seed}-{k}",
        "sources": list(sources),
        "members": [{"id_number": m.id_number, "name": m.name, "relation": m.relation} for m in members],
        "authorization": {
            "valid_from": start.isoformat(),
            "valid_until": until.isoformat(),
            "recheck_interval_days": 90,
            "data_life_days": 30,
            "consents": consents,
        } if consents else None,
    }
