"""hub.rules.unify as a pure function: members across sources, discrepancies, assessment and screening under versioned
standards, material changes. Households are built by hand here, one fact at a time; the generated households with
known truth go through the whole pipeline in test_records.py."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib

import pytest

from hub.rules.standards import RULES, rules_at
from hub.rules.unify import Applicant, material_changes, unify
from schemas.codes import birth_date_from_id, sex_from_id

AS_OF = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
V3 = rules_at(AS_OF.date())
MONTHS = [f"2025-{m:02d}" for m in range(1, 13)]


def _id(birth: str, seq: int, division: str = "210302") -> str:
    body = division + birth.replace("-", "") + f"{seq:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


def keyed(idn: str) -> str:
    return "p_" + hashlib.sha256(idn.encode()).hexdigest()[:32]


class Household:
    """A hand-built household: registration rows and the rows of every other source."""

    def __init__(self, division: str = "210302"):
        self.division = division
        self.people: list[tuple[str, str]] = []  # (id_number, name)
        self.rows: dict[str, list[dict]] = {"household": []}

    def person(self, birth: str, relation: str, *, status: str = "normal", name: str | None = None) -> str:
        seq = 2 * len(self.people) + 11
        idn = _id(birth, seq, self.division)
        name = name or f"成员{len(self.people)}"
        self.people.append((idn, name))
        self.rows["household"].append({"id_number": idn, "name": name, "sex": sex_from_id(idn),
                                       "birth_date": birth_date_from_id(idn).isoformat(), "household_no": "HH0001",
                                       "relation": relation, "status": status, "address_code": self.division})
        return idn

    def add(self, source: str, idn: str, **row) -> None:
        self.rows.setdefault(source, []).append({"id_number": idn, **row})

    def wages(self, idn: str, monthly: float, base: float | None = None, pf_base: float | None = None) -> None:
        for p in MONTHS:
            self.add("tax", idn, period=p, income_type="wages", amount=monthly, tax=0.0, withholder_uscc=None)
            b = base if base is not None else min(max(monthly, V3.si_base_floor), V3.si_base_ceiling)
            self.add("social_insurance", idn, period=p, kind="contribution", insurance_type="pension", base=b,
                     amount=round(b * 0.08, 2))
            if pf_base is not None:
                self.add("provident_fund", idn, period=p, base=pf_base, personal=1.0, employer=1.0, balance=10.0,
                         employer_name="x", employer_uscc=None)

    def unify(self, completeness: dict | None = None, applicants: list[Applicant] | None = None, as_of=AS_OF,
              rules=V3):
        applicants = applicants or [Applicant(keyed(i), i, n) for i, n in self.people]
        complete = {k: "complete" for k in ("household", "tax", "social_insurance", "provident_fund", "real_estate",
                                            "market_entity", "vehicles_vessels", "bank", "securities",
                                            "commercial_insurance", "internet_finance")}
        return unify(applicants, self.rows, {**complete, **(completeness or {})}, as_of, rules, keyed)[1]


def answers(content: dict) -> dict[str, str]:
    return {p: v["answer"] for p, v in content["assessment"]["screening"].items()}


def codes(content: dict, programme: str) -> set[str]:
    return {r["code"] for r in content["assessment"]["screening"][programme]["reasons"]}


def poor_couple() -> tuple[Household, str, str]:
    hh = Household()
    head = hh.person("1970-05-01", "head")
    spouse = hh.person("1972-03-09", "spouse")
    for p in MONTHS:
        hh.add("tax", head, period=p, income_type="labour", amount=900.0, tax=0.0, withholder_uscc=None)
    hh.add("bank", head, bank="工商银行", account="6222-1", product="demand", period="2025-12", balance=3000.0)
    return hh, head, spouse


def test_a_qualifying_household_passes_dibao_with_reasons_and_the_rules_version():
    c = poor_couple()[0].unify()
    a = c["assessment"]
    assert a["income"]["monthly_per_capita"] == 450.0 and a["income"]["monthly_by_category"]["labour"] == 900.0
    assert a["assets"]["financial_per_capita"] == 1500.0 and a["asset_test"]["passes"] is True
    assert answers(c) == {"dibao": "yes", "low_income": "no", "tekun": "no", "expenditure_poverty": "no"}
    reasons = " ".join(r["text"] for r in a["screening"]["dibao"]["reasons"])
    assert "passes the dibao asset test under rules anshan-2025-v3" in reasons
    assert a["screening"]["dibao"]["rules"] == "anshan-2025-v3" and c["discrepancies"] == []
    assert "INCOME_OUTSIDE_LOW_INCOME_BAND" in codes(c, "low_income")  # the two bands never overlap


@pytest.mark.parametrize("hide,code", [
    (lambda hh, i: hh.add("vehicles_vessels", i, kind="vehicle", plate="辽C12345", type="car", purchase_price=120000.0,
                          registered="2020-01-01", status="normal", disability_adapted=False), "OWNS_VEHICLE"),
    (lambda hh, i: [hh.add("real_estate", i, cert_no=f"辽(2020)鞍山市不动产权第{n}号", use="residential", area=60.0,
                           share=1.0, location_code="210302", address="x", acquired="2015-01-01", mortgaged=False)
                    for n in (1, 2)], "PROPERTIES_ABOVE_LIMIT"),
    (lambda hh, i: hh.add("bank", i, bank="建设银行", account="6217-9", product="time_deposit", period="2025-12",
                          balance=80000.0), "FINANCIAL_ASSETS_ABOVE_LIMIT"),
    (lambda hh, i: hh.add("market_entity", i, uscc="91210300MA0000000X", name="某公司", role="legal_rep",
                          registered_capital=500000.0, share=0.6, status="active", established="2018-01-01"),
     "RUNS_MARKET_ENTITY"),
])
def test_a_hidden_asset_fails_the_asset_test_with_its_reason(hide, code):
    hh, head, _ = poor_couple()
    hide(hh, head)
    c = hh.unify()
    assert answers(c)["dibao"] == "no" and code in codes(c, "dibao")
    assert c["assessment"]["asset_test"]["passes"] is False


def test_a_car_adapted_for_a_disability_and_a_rural_fishing_boat_are_allowed():
    hh = Household(division="210381")  # 海城市: rural
    head = hh.person("1960-01-01", "head")
    hh.add("tax", head, period="2025-12", income_type="labour", amount=1000.0, tax=0.0, withholder_uscc=None)
    hh.add("vehicles_vessels", head, kind="vehicle", plate="辽C1", type="car", purchase_price=30000.0,
           registered="2019-01-01", status="normal", disability_adapted=True)
    hh.add("vehicles_vessels", head, kind="vessel", plate="辽海渔1", type="fishing_vessel", purchase_price=20000.0,
           registered="2012-01-01", status="normal", disability_adapted=False)
    c = hh.unify()
    assert c["assessment"]["assets"]["cars"] == 0 and c["assessment"]["assets"]["vessels"] == 0
    assert c["assessment"]["standard"] == {"county": "210381", "area_type": "rural", "dibao_monthly": 620.0,
                                           "low_income_line": 930.0}


def test_a_deceased_member_is_not_counted_and_their_car_and_pension_are_flagged():
    hh, head, _ = poor_couple()
    late = hh.person("1940-02-02", "parent", status="deceased")
    hh.add("vehicles_vessels", late, kind="vehicle", plate="辽C9", type="car", purchase_price=50000.0,
           registered="2010-01-01", status="normal", disability_adapted=False)
    for p in MONTHS:
        hh.add("social_insurance", late, period=p, kind="benefit", insurance_type="pension", base=None, amount=2500.0)
    c = hh.unify()
    kinds = {(d["kind"], d["person_ref"]) for d in c["discrepancies"]}
    assert {("deceased_owner_vehicle", keyed(late)), ("deceased_member_income", keyed(late))} <= kinds
    a = c["assessment"]
    assert a["members_counted"] == 2 and a["income"]["monthly_per_capita"] == 450.0  # the pension is not theirs
    assert a["assets"]["cars"] == 0
    assert answers(c)["dibao"] == "needs_review" and "DISCREPANCIES" in codes(c, "dibao")
    member = next(m for m in c["members"] if m["person_ref"] == keyed(late))
    assert member["counted"] is False and member["status"] == "deceased"


def test_a_minor_counts_in_the_household_and_a_minor_running_a_company_is_flagged():
    hh, head, _ = poor_couple()
    child = hh.person("2012-06-01", "son")
    c = hh.unify()
    assert c["assessment"]["members_counted"] == 3 and c["assessment"]["income"]["monthly_per_capita"] == 300.0
    hh.add("market_entity", child, uscc="91210300MA0000001X", name="某公司", role="shareholder",
           registered_capital=100000.0, share=0.5, status="active", established="2020-01-01")
    c = hh.unify()
    assert ("minor_in_entity", keyed(child)) in {(d["kind"], d["person_ref"]) for d in c["discrepancies"]}
    assert answers(c)["dibao"] == "no"  # the company fails the asset test: a conclusive no


def test_wages_that_disagree_with_the_contribution_bases_are_flagged():
    hh = Household()
    honest, low = hh.person("1980-01-01", "head"), hh.person("1982-01-01", "spouse")
    hh.wages(honest, 6000.0, pf_base=6000.0)
    hh.wages(low, 2500.0, base=9000.0, pf_base=9000.0)  # declares 2,500 to tax, is insured on 9,000
    c = hh.unify()
    flagged = {(d["kind"], d["person_ref"]) for d in c["discrepancies"]}
    assert flagged == {("wages_vs_insurance_base", keyed(low)), ("wages_vs_provident_base", keyed(low))}
    assert next(d for d in c["discrepancies"] if d["kind"] == "wages_vs_insurance_base")["periods"] == MONTHS
    # wages below the floor are insured on the floor: not a discrepancy
    hh2 = Household()
    hh2.wages(hh2.person("1980-01-01", "head"), 2100.0)
    assert hh2.unify()["discrepancies"] == []


def test_members_are_checked_against_the_application():
    hh, head, spouse = poor_couple()
    applicants = [Applicant(keyed(head), head, "成员0"), Applicant(keyed(spouse), spouse, "别名"),
                  Applicant(keyed("11010519491231002X"), "11010519491231002X", "某人")]
    c = hh.unify(applicants=applicants)
    kinds = {(d["kind"], d["person_ref"]) for d in c["discrepancies"]}
    assert kinds == {("name_differs", keyed(spouse)), ("member_not_registered", keyed("11010519491231002X"))}
    assert all("id_number" not in m and m["id_number_masked"].count("*") == 10 for m in c["members"])


def test_an_incomplete_source_makes_a_yes_a_needs_review_but_not_a_no():
    hh, head, _ = poor_couple()
    c = hh.unify({"securities": "unavailable"})
    assert answers(c)["dibao"] == "needs_review" and "SOURCES_INCOMPLETE" in codes(c, "dibao")
    assert c["assessment"]["asset_test"]["passes"] is None
    hh.add("vehicles_vessels", head, kind="vehicle", plate="辽C2", type="truck", purchase_price=90000.0,
           registered="2021-01-01", status="normal", disability_adapted=False)
    assert answers(hh.unify({"securities": "unavailable"}))["dibao"] == "no"


def test_tekun_and_expenditure_type_hardship():
    hh = Household()
    hh.person("1945-01-01", "head")
    hh.person("2015-01-01", "grandchild")
    c = hh.unify()
    assert answers(c)["tekun"] == "needs_review"
    assert {"NO_INCOME_NO_SUPPORTER", "SUPPORTERS_NOT_IN_SOURCES"} <= codes(c, "tekun")
    earner = hh.person("1985-01-01", "son")
    hh.wages(earner, 4000.0)
    assert answers(hh.unify())["tekun"] == "no" and "HAS_SUPPORTER" in codes(hh.unify(), "tekun")

    band = Household()  # per capita between 1.5 and 2 times the standard: expenditure is for the caseworker
    band.wages(band.person("1980-01-01", "head"), 1400.0)
    c = band.unify()
    assert answers(c)["expenditure_poverty"] == "needs_review" and answers(c)["low_income"] == "no"


def test_the_standard_depends_on_the_date_and_the_county():
    assert [r.version for r in RULES] == ["anshan-2024-v2", "anshan-2025-v3", "anshan-2027-v4"]
    assert rules_at(dt.date(2027, 6, 30)).version == "anshan-2025-v3"  # announced, not yet in force
    assert rules_at(dt.date(2027, 7, 1)).version == "anshan-2027-v4"
    hh = Household(division="210321")  # 台安县
    head = hh.person("1970-01-01", "head")
    hh.add("tax", head, period="2024-06", income_type="labour", amount=6840.0, tax=0.0, withholder_uscc=None)
    old = hh.unify(as_of=dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc), rules=rules_at(dt.date(2024, 7, 1)))
    assert old["assessment"]["rules"] == "anshan-2024-v2" and old["assessment"]["standard"]["dibao_monthly"] == 560.0
    assert old["assessment"]["income"]["monthly_per_capita"] == 570.0 and answers(old)["dibao"] == "no"
    new = hh.unify(as_of=dt.datetime(2025, 2, 1, tzinfo=dt.timezone.utc), rules=rules_at(dt.date(2025, 2, 1)))
    assert new["assessment"]["standard"]["dibao_monthly"] == 620.0 and answers(new)["dibao"] == "yes"
    urban = Household(division="210302")
    urban.person("1970-01-01", "head")
    assert urban.unify(rules=RULES[0], as_of=dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc))[
        "assessment"]["standard"]["dibao_monthly"] == 760.0


def test_every_fact_names_its_authoritative_source():
    hh, head, _ = poor_couple()
    hh.wages(head, 1000.0, pf_base=1000.0)
    c = hh.unify()
    authority = c["authority"]
    sources = {"income": {"tax", "social_insurance"}, "contributions": {"social_insurance"},
               "provident_fund": {authority["provident_fund"]}, "deposits": {authority["deposits"]}}
    for group, allowed in sources.items():
        assert c["facts"][group] and {f["from"] for f in c["facts"][group]} <= allowed, group
    assert authority["membership"] == "household" and authority["wages"] == "tax"
    assert authority["pension"] == "social_insurance"


def test_material_changes_between_versions():
    hh, head, _ = poor_couple()
    first = hh.unify()
    assert material_changes(None, first) == [{"field": "record", "change": "first_version"}]
    assert material_changes(first, copy.deepcopy(first)) == []
    hh.add("vehicles_vessels", head, kind="vehicle", plate="辽C3", type="car", purchase_price=99000.0,
           registered="2025-05-01", status="normal", disability_adapted=False)
    for p in MONTHS:
        hh.add("tax", head, period=p, income_type="wages", amount=300.0, tax=0.0, withholder_uscc=None)
    second = hh.unify()
    fields = {c["field"]: c["change"] for c in material_changes(first, second)}
    assert fields["assets.cars"] == "increased" and fields["screening.dibao"] == "yes->no"
    assert fields["income.monthly_per_capita"] == "increased"


def test_reasons_say_their_outcome_whether_they_decided_and_whom_they_concern():
    hh, head, spouse = poor_couple()
    hh.add("vehicles_vessels", spouse, kind="vehicle", plate="辽C2", type="car", purchase_price=86000.0,
           registered="2021-06-01", status="normal", disability_adapted=False)
    c = hh.unify()
    dibao = c["assessment"]["screening"]["dibao"]
    assert dibao["answer"] == "no"
    by_code = {r["code"]: r for r in dibao["reasons"]}
    # the income test passed and did not decide; the car failed the asset test and decided, naming its owner
    assert by_code["INCOME_BELOW_STANDARD"]["outcome"] == "pass" and not by_code["INCOME_BELOW_STANDARD"]["decisive"]
    assert by_code["INCOME_BELOW_STANDARD"]["values"] == {"per_capita": 450.0, "standard": 800.0}
    car = by_code["OWNS_VEHICLE"]
    assert car["outcome"] == "fail" and car["decisive"] and car["persons"] == [keyed(spouse)]
    assert car["values"] == {"count": 1} and " / " in car["text"]  # the text stays for its readers
    # the facts behind the count: which car, and the income by category and month
    details = c["assessment"]["details"]
    assert details["vehicles_vessels"] == [{"person_ref": keyed(spouse), "kind": "vehicle", "type": "car",
                                            "purchase_price": 86000.0, "year": 2021, "status": "normal",
                                            "disability_adapted": False, "counted": True}]
    assert details["income"]["months"] == MONTHS and details["income"]["by_category"] == {
        "labour": {m: 900.0 for m in MONTHS}}
    assert details["financial"] == [{"kind": "deposits", "person_ref": keyed(head), "institution": "工商银行",
                                     "product": "demand", "amount": 3000.0}]


def test_a_household_that_qualifies_is_decided_by_every_passed_test_and_review_by_what_is_missing():
    hh, head, _ = poor_couple()
    yes = hh.unify()["assessment"]["screening"]["dibao"]
    assert yes["answer"] == "yes" and all(r["decisive"] and r["outcome"] == "pass" for r in yes["reasons"])
    review = hh.unify({"bank": "incomplete"})["assessment"]["screening"]["dibao"]
    assert review["answer"] == "needs_review"
    decisive = [r for r in review["reasons"] if r["decisive"]]
    assert [r["code"] for r in decisive] == ["SOURCES_INCOMPLETE"] and decisive[0]["values"]["sources"] == ["bank"]
