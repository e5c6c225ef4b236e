"""Assistance standards, versioned, per county and urban/rural (configurable policy, not code).

Each ``Rules`` version takes effect on a date and holds the monthly dibao standard of every county (Anshan's
divisions) for urban and rural households, and the parameters of the asset test and of each programme. A record is
assessed under the version in force on its ``as_of`` date, and says which.

The figures of version 3 are those the simulated population is generated against (agencies/truth.py): the city
keeps one urban and one rural standard (urban:rural 1.29, within the 1.3:1 aim). Version 2 (2024) had lower rural
standards in the three counties, to show that the county matters. Version 4 (in force from July 2027) raises both
lines; ``hub review --standards anshan-2027-v4 --as-of DATE`` shows its effect on the records held before it is in
force (hub.stages.review.what_if).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from schemas.codes import ANSHAN_DIVISIONS


@dataclass(frozen=True)
class Rules:
    version: str
    effective_from: dt.date
    dibao: dict[str, dict[str, float]]  # county code -> {"urban": yuan, "rural": yuan} per person per month
    low_income_factor: float = 1.5  # low-income families: below this multiple of the dibao standard
    expenditure_factor: float = 2.0  # expenditure-type hardship is considered below this multiple
    income_months: int = 12  # the assessment window
    asset_months: int = 24  # financial assets per capita at most this many months of the standard
    max_residential_properties: int = 1
    counted_vehicle_types: frozenset[str] = frozenset({"car", "truck"})  # unless adapted for a disability
    exempt_rural_vessel_types: frozenset[str] = frozenset({"fishing_vessel"})  # a rural household's livelihood
    counted_entity_roles: frozenset[str] = frozenset({"legal_rep", "shareholder"})  # operating a stall is allowed
    working_age: tuple[int, int] = (18, 60)  # [from, to): tekun looks at those outside it, and at supporters in it
    si_base_floor: float = 3_800.0  # social-insurance contribution base, yuan per month
    si_base_ceiling: float = 19_000.0
    base_tolerance: float = 0.10  # wages and a contribution base may differ this much before it is flagged
    notes: tuple[str, ...] = field(default_factory=tuple)

    def standard(self, county: str, area_type: str) -> float:
        try:
            return self.dibao[county][area_type]
        except KeyError:
            raise UnknownCounty(f"rules {self.version} have no {area_type} standard for county {county}") from None


class UnknownCounty(LookupError):
    pass


def _all_counties(urban: float, rural: float, **overrides: dict[str, float]) -> dict[str, dict[str, float]]:
    out = {code: {"urban": urban, "rural": rural} for code in ANSHAN_DIVISIONS}
    for code, values in overrides.items():
        out[code.removeprefix("c")] = {**out[code.removeprefix("c")], **values}
    return out


RULES: tuple[Rules, ...] = (
    Rules("anshan-2024-v2", dt.date(2024, 1, 1),
          _all_counties(760.0, 590.0, c210321={"rural": 560.0}, c210323={"rural": 560.0}, c210381={"rural": 575.0}),
          si_base_floor=3_600.0, si_base_ceiling=18_000.0),
    Rules("anshan-2025-v3", dt.date(2025, 1, 1), _all_counties(800.0, 620.0)),
    Rules("anshan-2027-v4", dt.date(2027, 7, 1), _all_counties(900.0, 700.0),
          notes=("a higher dibao line, announced ahead of its date",)),
)


def rules_at(day: dt.date) -> Rules:
    """The version in force on ``day``."""
    in_force = [r for r in RULES if r.effective_from <= day]
    if not in_force:
        raise LookupError(f"no assistance rules in force on {day.isoformat()}")
    return max(in_force, key=lambda r: r.effective_from)
