"""Sample requests: what a department would submit for a generated household."""

from __future__ import annotations

import datetime as dt
import hashlib

from agencies.population import household_in_population


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
    if not 0 <= k < households:
        raise ValueError(f"household {k} is not in a population of {households}")
    hh = household_in_population(seed, households, k)  # the IDs the agencies serve (collisions resolved)
    today = today or dt.datetime.now(dt.timezone.utc).date()
    start = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    until = start + dt.timedelta(days=validity_days)
    members = [m for m in hh.members if m.status == "normal"]
    return {
        "department": department,
        "purpose": purpose,
        "case_ref": f"DEMO-{seed}-{k}",
        "sources": list(sources),
        "members": [{"id_number": m.id_number, "name": m.name, "relation": m.relation} for m in members],
        "authorizations": [
            {
                "id_number": m.id_number,
                "purpose": purpose,
                "sources": list(sources),
                "valid_from": start.isoformat(),
                "valid_until": until.isoformat(),
                "evidence_sha256": hashlib.sha256(f"signed-form:{seed}:{k}:{i}".encode()).hexdigest(),
            }
            for i, m in enumerate(members)
        ],
    }
