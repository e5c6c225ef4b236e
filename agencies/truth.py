"""What is really true of a generated household: the assistance rules applied to its generated facts.

The generator draws an archetype per household and generates facts to match it; ``assess`` then computes
every figure below FROM those facts (never copied from the archetype), so tests can check that the two agree
and the hub's own assessment can be compared with the truth.

Rules (Anshan, simplified; amounts in yuan):
- income: the average over the 12 months of 2025 of everything the tax source reports (wages, labour,
  business, property lease; gross amounts) plus pension and unemployment benefits, of the members whose
  status is normal, divided by the number of those members;
- financial assets: bank balances of the last month (2025-12) + securities market value + insurance cash value
  + internet-finance balances, of the normal members, per capita;
- asset test: financial assets per capita at most ASSET_MONTHS x standard; at most
  MAX_RESIDENTIAL_PROPERTIES residential properties; no car or truck in normal status unless disability-adapted;
  no vessel in normal status except the fishing vessels of rural households; no active market entity where a
  member is legal representative or shareholder (operating an individual business is allowed);
- dibao: income below the standard and the asset test passed;
- low income: standard <= income < LOW_INCOME_FACTOR x standard and the asset test passed. A dibao household is
  NOT counted as low-income (the two are exclusive).
Only members with status normal count; moved-out and deceased members are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agencies.population import Household

DIBAO_STANDARD: dict[str, float] = {"urban": 800.0, "rural": 620.0}  # yuan per person per month; ratio 1.29
LOW_INCOME_FACTOR = 1.5
ASSET_MONTHS = 24  # financial assets per capita at most 24 months of the standard
MAX_RESIDENTIAL_PROPERTIES = 1
INCOME_MONTHS = 12
LAST_PERIOD = "2025-12"  # the month whose bank balances count
COUNTED_VEHICLE_TYPES = frozenset({"car", "truck"})
EXEMPT_RURAL_VESSEL_TYPES = frozenset({"fishing_vessel"})
COUNTED_ENTITY_ROLES = frozenset({"legal_rep", "shareholder"})

# names of the asset-test failures in Truth.asset_failures
FAIL_FINANCIAL = "financial_assets"
FAIL_PROPERTIES = "properties"
FAIL_CARS = "cars"
FAIL_VESSELS = "vessels"
FAIL_ENTITIES = "entities"


@dataclass
class Truth:
    """What holds for one household under the rules above. Amounts in yuan, rounded to 2 decimals; the
    eligibility flags compare the rounded figures. dibao_eligible and low_income_eligible never both hold."""

    archetype: str  # dibao | low_income | ordinary | hides_car | hides_flat | hides_deposits | hides_company
    hidden: list[str]  # what the household hides: [] or one of car, flat, deposits, company
    standard: float  # the monthly dibao standard applied (urban or rural)
    members: int  # members with status normal, the denominator of every per-capita figure
    monthly_income_per_capita: float
    financial_assets_per_capita: float
    properties: int  # residential properties (distinct certificates) held by normal members
    residential_area_per_capita: float  # sum of area x share over those properties, per capita
    cars: int  # cars and trucks in normal status, not disability-adapted
    vessels: int  # vessels in normal status that the asset test counts
    entities: int  # active market entities where a member is legal representative or shareholder
    asset_failures: list[str] = field(default_factory=list)  # which asset tests failed (FAIL_* names)
    assets_pass: bool = True
    dibao_eligible: bool = False
    low_income_eligible: bool = False


_NONE: dict[str, list[dict]] = {}


def assess(hh: Household, archetype: str, hidden: list[str], by_source: dict[str, dict[str, list[dict]]]) -> Truth:
    """The truth of one household, computed from its facts (see the module docstring for the rules)."""
    standard = DIBAO_STANDARD[hh.area_type]
    rural = hh.area_type == "rural"
    ids = [p.id_number for p in hh.members if p.status == "normal"]
    n = max(1, len(ids))
    get = by_source.get
    tax, si, bank = get("tax") or _NONE, get("social_insurance") or _NONE, get("bank") or _NONE
    securities, insurance = get("securities") or _NONE, get("commercial_insurance") or _NONE
    internet, real_estate = get("internet_finance") or _NONE, get("real_estate") or _NONE
    vehicles, entities_table = get("vehicles_vessels") or _NONE, get("market_entity") or _NONE
    last = LAST_PERIOD

    income = financial = area = 0.0
    certificates, cars, vessels, entities = set(), set(), set(), set()
    for pid in ids:
        rows = tax.get(pid)
        if rows:
            income += sum([r["amount"] for r in rows])
        rows = si.get(pid)
        if rows:
            income += sum([r["amount"] for r in rows if r["kind"] == "benefit"])
        rows = bank.get(pid)
        if rows:
            financial += sum([r["balance"] for r in rows if r["period"] == last])
        rows = securities.get(pid)
        if rows:
            financial += sum([r["market_value"] for r in rows])
        rows = insurance.get(pid)
        if rows:
            financial += sum([r["cash_value"] for r in rows])
        rows = internet.get(pid)
        if rows:
            financial += sum([r["balance"] for r in rows])
        for r in real_estate.get(pid, ()):
            if r["use"] == "residential":
                certificates.add(r["cert_no"])
                area += r["area"] * r["share"]
        for r in vehicles.get(pid, ()):
            if r["status"] != "normal":
                continue
            if r["kind"] == "vehicle":
                if r["type"] in COUNTED_VEHICLE_TYPES and not r["disability_adapted"]:
                    cars.add(r["plate"])
            elif not (rural and r["type"] in EXEMPT_RURAL_VESSEL_TYPES):
                vessels.add(r["plate"])
        for r in entities_table.get(pid, ()):
            if r["status"] == "active" and r["role"] in COUNTED_ENTITY_ROLES:
                entities.add(r["uscc"])
    income_pc = round(income / INCOME_MONTHS / n, 2)
    financial_pc = round(financial / n, 2)
    area_pc = round(area / n, 2)
    properties = len(certificates)

    failures = []
    if financial_pc > ASSET_MONTHS * standard:
        failures.append(FAIL_FINANCIAL)
    if properties > MAX_RESIDENTIAL_PROPERTIES:
        failures.append(FAIL_PROPERTIES)
    if cars:
        failures.append(FAIL_CARS)
    if vessels:
        failures.append(FAIL_VESSELS)
    if entities:
        failures.append(FAIL_ENTITIES)
    assets_pass = not failures
    return Truth(
        archetype=archetype,
        hidden=list(hidden),
        standard=standard,
        members=len(ids),
        monthly_income_per_capita=income_pc,
        financial_assets_per_capita=financial_pc,
        properties=properties,
        residential_area_per_capita=area_pc,
        cars=len(cars),
        vessels=len(vessels),
        entities=len(entities),
        asset_failures=failures,
        assets_pass=assets_pass,
        dibao_eligible=assets_pass and income_pc < standard,
        low_income_eligible=assets_pass and standard <= income_pc < LOW_INCOME_FACTOR * standard,
    )
