from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import math
import re
import statistics
import tracemalloc

import pytest

from agencies import population as pop
from agencies.population import (
    ARCHETYPE_SHARES,
    FACT_SOURCES,
    HIDDEN_CAR_PRICE,
    PERIODS,
    SI_BASE_CEILING,
    SI_BASE_FLOOR,
    IdRegistry,
    employer,
    facts,
    household,
    household_in_population,
    households,
    population,
)
from agencies.requests import sample_request
from agencies.truth import ASSET_MONTHS, DIBAO_STANDARD, LOW_INCOME_FACTOR, assess
from schemas.codes import ANSHAN_DIVISIONS, birth_date_from_id, is_valid_id, sex_from_id, valid_id_mask
from schemas.uscc import is_valid_uscc, org_code_check_char, uscc_check_char

FACTS_HOUSEHOLDS = 2_000


@pytest.fixture(scope="module", params=pop.PROFILES)
def generated(request) -> list[pop.HouseholdFacts]:
    """Facts of the first 2,000 households of seed 21 in each profile (shared by the distribution and consistency
    tests)."""
    return [facts(21, hh) for hh in population(21, FACTS_HOUSEHOLDS, request.param)]


# -- identities ----------------------------------------------------------------------------------------------------


def test_same_seed_same_population_other_seed_other_population():
    assert list(households(5, 30)) == list(households(5, 30))
    assert list(households(5, 30)) != list(households(6, 30))
    assert household(5, 17) == list(households(5, 18))[17]


@pytest.mark.parametrize("profile", pop.PROFILES)
def test_every_person_is_consistent_with_the_id_number(profile):
    people = [p for h in households(9, 300, profile) for p in h.members]
    assert len({p.id_number for p in people}) == len(people)
    for p in people:
        assert is_valid_id(p.id_number)
        assert sex_from_id(p.id_number) == p.sex
        assert birth_date_from_id(p.id_number) == p.birth_date
        assert p.address_code in ANSHAN_DIVISIONS


@pytest.mark.parametrize("profile", pop.PROFILES)
def test_households_have_one_head_and_one_to_seven_members(profile):
    for h in households(9, 300, profile):
        assert 1 <= len(h.members) <= 7
        assert [p.relation for p in h.members].count("head") == 1
        assert h.members[0].status == "normal"


def test_the_city_looks_like_the_census():
    """Anshan's family households average 2.25 persons (7th census, 2021), one- and two-person households the most
    common; Liaoning's residents are 11.12% aged 0-14 and 25.72% aged 60 or more, Anshan's registered residents 32.6%
    (agencies.population cites the sources). The classic test population is larger and younger."""
    def shape(profile):
        sizes, ages = [], []
        for h in population(3, 20_000, profile):
            living = [p for p in h.members if p.status == "normal"]
            sizes.append(len(living))
            ages += [pop._age(p.birth_date) for p in living]
        small = sum(n <= 2 for n in sizes) / len(sizes)
        return (statistics.mean(sizes), small, sum(a < 15 for a in ages) / len(ages),
                sum(a >= 60 for a in ages) / len(ages))

    size, small, children, elderly = shape("city")
    assert 2.15 <= size <= 2.35 and small >= 0.6
    assert 0.09 <= children <= 0.14 and 0.25 <= elderly <= 0.33
    assert shape("classic")[0] > 3  # what the tests' households look like, unchanged


def test_the_profile_comes_from_the_environment_and_an_unknown_one_is_refused(monkeypatch):
    from core.settings import settings

    monkeypatch.delenv("HUB_POPULATION_PROFILE", raising=False)
    assert settings().population_profile == "city" and pop.profile_of(None) == "city"
    assert household(4, 2) == household(4, 2, "city") != household(4, 2, "classic")
    monkeypatch.setenv("HUB_POPULATION_PROFILE", "classic")
    assert pop.profile_of(None) == "classic" and household(4, 2) == household(4, 2, "classic")
    monkeypatch.setenv("HUB_POPULATION_PROFILE", "village")
    with pytest.raises(ValueError, match="population profile"):
        list(population(4, 2))


def test_a_streamed_population_of_20000_households_has_unique_valid_ids():
    ids, sizes, people, moved = [], [], 0, 0
    for hh in population(13, 20_000):
        raw = household(13, hh.index)  # the same household before deduplication
        for p, q in zip(hh.members, raw.members):
            if p != q:  # only the ID (sequence number) changed
                moved += 1
                assert dataclasses.replace(p, id_number=q.id_number) == q
        sizes.append(len(hh.members))
        for p in hh.members:
            ids.append(p.id_number)
            assert p.id_number[16] in ("13579" if p.sex == "male" else "02468")
            assert p.id_number[6:14] == f"{p.birth_date:%Y%m%d}"
            assert p.id_number[:6] == p.address_code == hh.division
            assert pop.SLOT_ORIGIN <= p.birth_date < pop.REFERENCE_DATE
        people += len(hh.members)
    assert valid_id_mask(ids).all()
    assert len(set(ids)) == len(ids) == people
    assert moved > 0  # random IDs collide in a population this size; the stream resolved them
    assert set(sizes) <= set(range(1, 8)) and min(sizes) == 1 and max(sizes) == 7
    assert 2.0 <= statistics.mean(sizes) <= 3.5


def test_a_taken_id_moves_to_the_next_free_sequence_of_the_same_parity():
    registry = IdRegistry()
    person = household(3, 0).members[0]
    assert registry.claim(person) is person
    again = registry.claim(person)
    assert again.id_number != person.id_number and is_valid_id(again.id_number)
    assert int(again.id_number[14:17]) == int(person.id_number[14:17]) + 2 or again.id_number[14:17] < "002"
    assert (again.birth_date, again.sex, again.name) == (person.birth_date, person.sex, person.name)
    assert registry.claimed == 2 and registry.moved == 1


def test_when_all_500_sequences_of_a_day_are_taken_the_id_moves_to_the_next_day():
    registry = IdRegistry()
    person = household(3, 1).members[0]
    claimed = {registry.claim(person).id_number for _ in range(500)}
    assert len(claimed) == 500 and all(birth_date_from_id(i) == person.birth_date for i in claimed)
    moved = registry.claim(person)
    assert moved.birth_date == person.birth_date + dt.timedelta(days=1)
    assert birth_date_from_id(moved.id_number) == moved.birth_date and sex_from_id(moved.id_number) == person.sex
    assert is_valid_id(moved.id_number)


def test_streaming_uses_a_fixed_size_bitmap():
    assert pop.BITMAP_BYTES == (7 * 36_525 * 1000 + 7) // 8  # about 32 MB whatever the population
    peaks = []
    for n in (1_000, 4_000):
        tracemalloc.start()
        for _ in population(4, n):
            pass
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] - peaks[0] < 2_000_000  # no per-ID memory
    assert peaks[1] < pop.BITMAP_BYTES + 5_000_000


def test_household_in_population_is_the_streamed_household():
    streamed = list(population(8, 40))
    assert household_in_population(8, 40, 39) == streamed[39]
    assert household_in_population(8, 40, 0) == streamed[0] == household(8, 0)
    with pytest.raises(ValueError):
        household_in_population(8, 40, 40)


def test_sample_request_names_the_living_members_with_their_authorizations():
    doc = sample_request(seed=9, households=300, k=4)
    living = [p for p in household_in_population(9, 300, 4).members if p.status == "normal"]
    assert [m["id_number"] for m in doc["members"]] == [p.id_number for p in living]
    consents = doc["authorization"]["consents"]
    assert [c["id_number"] for c in consents] == [p.id_number for p in living]
    assert all(("evidence_sha256" in c) != ("guardian_id_number" in c) for c in consents)


# -- unified social credit codes -----------------------------------------------------------------------------------


def test_uscc_check_character():
    assert is_valid_uscc("91350100M000100Y43")
    assert uscc_check_char("91350100M000100Y4") == "3"
    assert org_code_check_char("M000100Y") == "4"
    assert not is_valid_uscc("91350100M000100Y44")  # wrong check character
    assert not is_valid_uscc("91350100M000100Y4")  # too short
    assert not is_valid_uscc("91350100I000100Y43")  # I is not in the charset
    assert not is_valid_uscc("91350100m000100y43")  # lower case
    assert not is_valid_uscc(None)
    for j in (0, 1, 777, pop.N_EMPLOYERS - 1):
        name, code = employer(j)
        assert is_valid_uscc(code) and code[:8] == "91210300" and name.endswith("公司")
        assert code[16] == org_code_check_char(code[8:16])
    assert len({employer(j)[1] for j in range(pop.N_EMPLOYERS)}) == pop.N_EMPLOYERS


def test_every_generated_uscc_is_valid_and_unique_per_entity(generated):
    codes = [r["withholder_uscc"] for f in generated for rows in f.by_source["tax"].values() for r in rows
             if r["withholder_uscc"]]
    codes += [r["employer_uscc"] for f in generated for rows in f.by_source["provident_fund"].values() for r in rows]
    entities = [(r["uscc"], r["name"]) for f in generated for rows in f.by_source["market_entity"].values()
                for r in rows]
    assert codes and entities
    assert all(is_valid_uscc(c) for c in codes)
    assert all(is_valid_uscc(c) and c[8:10] == "MA" and c[16] == org_code_check_char(c[8:16]) for c, _ in entities)
    assert len({c for c, _ in entities}) == len(entities)


# -- facts ---------------------------------------------------------------------------------------------------------


def test_same_seed_same_facts_other_seed_other_facts():
    first = [facts(5, hh) for hh in population(5, 40)]
    assert first == [facts(5, hh) for hh in population(5, 40)]
    assert first[7] == facts(5, list(population(5, 8))[7])  # order does not matter
    other = [facts(6, hh) for hh in population(6, 40)]
    assert [f.by_source for f in first] != [f.by_source for f in other]
    assert [f.truth for f in first] != [f.truth for f in other]


def test_facts_do_not_touch_the_identity_stream():
    before = household(5, 3)
    facts(5, before)
    assert household(5, 3) == before


def test_canonical_rows_are_plain_json_with_the_documented_fields(generated):
    fields = {
        "tax": {"period", "income_type", "amount", "tax", "withholder_uscc"},
        "social_insurance": {"period", "kind", "insurance_type", "base", "amount"},
        "provident_fund": {"period", "base", "personal", "employer", "balance", "employer_name", "employer_uscc"},
        "real_estate": {"cert_no", "use", "area", "share", "location_code", "address", "acquired", "mortgaged"},
        "market_entity": {"uscc", "name", "role", "registered_capital", "share", "status", "established"},
        "vehicles_vessels": {"kind", "plate", "type", "purchase_price", "registered", "status", "disability_adapted"},
        "bank": {"bank", "account", "product", "period", "balance"},
        "securities": {"firm", "account", "security_code", "security_name", "quantity", "market_value", "as_of"},
        "commercial_insurance": {"insurer", "policy_no", "product", "type", "cash_value", "annual_premium",
                                 "effective"},
        "internet_finance": {"platform", "product", "balance", "as_of"},
    }
    date = re.compile(r"^\d{4}-\d{2}-\d{2}$")
    seen = collections.Counter()
    for f in generated:
        assert set(f.by_source) == set(FACT_SOURCES)
        members = {p.id_number for p in f.household.members}
        for source, table in f.by_source.items():
            for pid, rows in table.items():
                assert pid in members and rows, "no empty lists: a person without rows has no entry"
                for row in rows:
                    seen[source] += 1
                    assert set(row) == fields[source]
                    for key, value in row.items():
                        assert isinstance(value, (str, int, float, bool, type(None))), (source, key)
                        if isinstance(value, float):
                            assert value >= 0 and round(value, 2) == value, (source, key, value)
                        if key in ("acquired", "established", "registered", "effective", "as_of"):
                            assert date.match(value) and "1950-01-01" <= value <= "2025-12-31", (source, key)
                    if "period" in row:
                        assert row["period"] in PERIODS
        json.dumps(f.by_source, ensure_ascii=False)
    assert set(seen) == set(FACT_SOURCES)


def test_code_values_plates_and_amounts_are_plausible(generated):
    for f in generated:
        s = f.by_source
        for r in (r for rows in s["tax"].values() for r in rows):
            assert r["income_type"] in ("wages", "labour", "business", "property_lease")
            assert 0 <= r["tax"] < r["amount"]
        for r in (r for rows in s["social_insurance"].values() for r in rows):
            if r["kind"] == "contribution":
                assert r["insurance_type"] in ("pension", "medical", "unemployment")
                assert SI_BASE_FLOOR <= r["base"] <= SI_BASE_CEILING
                rate = dict(pop.SI_EMPLOYEE_RATES)[r["insurance_type"]]
                assert abs(r["amount"] - r["base"] * rate) <= 0.01
            else:
                assert r["kind"] == "benefit" and r["insurance_type"] in ("pension", "unemployment")
                assert r["base"] is None and r["amount"] > 0
        for rows in s["provident_fund"].values():
            balances = [r["balance"] for r in rows]
            assert balances == sorted(balances)
            for r in rows:
                assert r["personal"] == r["employer"] and abs(r["personal"] - r["base"] * 0.12) <= 0.01
        for r in (r for rows in s["real_estate"].values() for r in rows):
            assert r["use"] in ("residential", "commercial", "parking", "other") and 0 < r["share"] <= 1
            assert r["location_code"] in ANSHAN_DIVISIONS and r["address"].startswith("鞍山市")
            assert re.match(r"^辽\(\d{4}\)\S+不动产权第\d{8}号$", r["cert_no"])
        for r in (r for rows in s["market_entity"].values() for r in rows):
            assert r["role"] in ("legal_rep", "shareholder", "operator") and 0 < r["share"] <= 1
            assert r["status"] in ("active", "revoked", "cancelled") and r["registered_capital"] > 0
        for r in (r for rows in s["vehicles_vessels"].values() for r in rows):
            if r["kind"] == "vehicle":
                assert r["type"] in ("car", "motorcycle", "truck")
                assert re.match(r"^辽C[0-9A-HJ-NP-Z]{5}$", r["plate"])
            else:
                assert r["type"] in ("fishing_vessel", "cargo_vessel")
                assert re.match(r"^辽鞍[渔货]\d{5}$", r["plate"])
            assert r["status"] in ("normal", "scrapped", "seized") and r["purchase_price"] > 0
        for r in (r for rows in s["bank"].values() for r in rows):
            assert r["product"] in ("demand", "time_deposit", "wealth")
            assert re.match(r"^62\d{2}\*{8}\d{4}$", r["account"])
        for r in (r for rows in s["securities"].values() for r in rows):
            assert r["quantity"] % 100 == 0 and r["market_value"] > 0 and r["as_of"] == "2025-12-31"
        for r in (r for rows in s["commercial_insurance"].values() for r in rows):
            assert r["type"] in ("life", "annuity", "health", "accident") and r["annual_premium"] > 0
            if r["type"] == "accident":
                assert r["cash_value"] == 0


def test_plates_and_certificates_are_unique_across_the_population(generated):
    plates = [r["plate"] for f in generated for rows in f.by_source["vehicles_vessels"].values() for r in rows]
    certs = {(r["cert_no"], r["address"]) for f in generated for rows in f.by_source["real_estate"].values()
             for r in rows}
    assert len(set(plates)) == len(plates)
    assert len({c for c, _ in certs}) == len(certs)  # co-owners share one certificate, nobody else does


def test_deceased_have_no_facts_and_minors_no_income_entities_or_vehicles(generated):
    checked = collections.Counter()
    for f in generated:
        for p in f.household.members:
            age = pop._age(p.birth_date)
            sources = {k for k, table in f.by_source.items() if p.id_number in table}
            if p.status == "deceased":
                assert not sources
                checked["deceased"] += 1
            elif age < 18:
                assert not sources & {"tax", "social_insurance", "provident_fund", "market_entity",
                                      "vehicles_vessels", "real_estate", "securities", "internet_finance"}
                checked["minor"] += 1
    assert checked["deceased"] > 10 and checked["minor"] > 500


def test_archetype_shares_and_other_distributions(generated):
    n = len(generated)
    shares = collections.Counter(f.truth.archetype for f in generated)
    table = ARCHETYPE_SHARES if generated[0].household.profile == "classic" else pop.CITY_ARCHETYPE_SHARES
    assert set(shares) == set(table)
    for archetype, share in table.items():
        tolerance = 4 * math.sqrt(share * (1 - share) / n)  # four standard deviations of a share of n households
        assert abs(shares[archetype] / n - share) <= tolerance, (archetype, shares[archetype] / n)
    assert abs(sum(table.values()) - 1) < 1e-9
    with_vehicles = sum(bool(f.by_source["vehicles_vessels"]) for f in generated) / n
    with_property = sum(bool(f.by_source["real_estate"]) for f in generated) / n
    with_wages = sum(any(r["income_type"] == "wages" for rows in f.by_source["tax"].values() for r in rows)
                     for f in generated) / n
    with_vessels = sum(any(r["kind"] == "vessel" for rows in f.by_source["vehicles_vessels"].values() for r in rows)
                       for f in generated) / n
    assert 0.25 <= with_vehicles <= 0.55
    assert 0.65 <= with_property <= 0.95
    assert 0.35 <= with_wages <= 0.75
    assert 0.0 < with_vessels <= 0.03
    ordinary = [f.truth for f in generated if f.truth.archetype == "ordinary"]
    assert 1.6 <= statistics.median(t.monthly_income_per_capita / t.standard for t in ordinary) <= 6
    assert DIBAO_STANDARD["urban"] / DIBAO_STANDARD["rural"] <= 1.3


def _income_per_capita(f: pop.HouseholdFacts) -> float:
    """The income rule written again, independently of agencies.truth."""
    normal = [p.id_number for p in f.household.members if p.status == "normal"]
    total = 0.0
    for pid in normal:
        total += sum(r["amount"] for r in f.by_source["tax"].get(pid, []))
        total += sum(r["amount"] for r in f.by_source["social_insurance"].get(pid, []) if r["kind"] == "benefit")
    return total / 12 / len(normal)


def test_truth_is_computed_from_the_facts_and_agrees_with_the_archetype(generated):
    for f in generated:
        t, s = f.truth, f.by_source
        standard = DIBAO_STANDARD[f.household.area_type]
        normal = {p.id_number for p in f.household.members if p.status == "normal"}
        assert t.standard == standard and t.members == len(normal)
        assert abs(t.monthly_income_per_capita - _income_per_capita(f)) <= 0.01
        assert t == assess(f.household, t.archetype, t.hidden, s)
        assert not (t.dibao_eligible and t.low_income_eligible)
        income = t.monthly_income_per_capita
        if t.archetype == "dibao":
            assert t.dibao_eligible and t.assets_pass and income < standard and t.hidden == []
        elif t.archetype == "low_income":
            assert t.low_income_eligible and t.assets_pass and standard <= income < LOW_INCOME_FACTOR * standard
        elif t.archetype == "ordinary":
            assert not t.dibao_eligible and not t.low_income_eligible and income >= LOW_INCOME_FACTOR * standard
        else:  # hiding: looks like dibao on income, fails on exactly the hidden asset
            assert income < standard and not t.dibao_eligible and not t.low_income_eligible
            hidden = pop.HIDDEN_ASSET[t.archetype]
            assert t.hidden == [hidden]
            assert t.asset_failures == [{"car": "cars", "flat": "properties", "deposits": "financial_assets",
                                         "company": "entities"}[hidden]]
            rows = lambda source: [r for pid in normal for r in s[source].get(pid, [])]  # noqa: E731
            if hidden == "car":
                assert any(r["type"] == "car" and r["status"] == "normal" and not r["disability_adapted"]
                           and HIDDEN_CAR_PRICE[0] <= r["purchase_price"] <= HIDDEN_CAR_PRICE[1]
                           for r in rows("vehicles_vessels"))
            elif hidden == "flat":
                assert len({r["cert_no"] for r in rows("real_estate") if r["use"] == "residential"}) == 2
            elif hidden == "deposits":
                december = sum(r["balance"] for r in rows("bank") if r["period"] == "2025-12")
                assert december > ASSET_MONTHS * standard * len(normal)
            else:
                assert any(r["role"] == "legal_rep" and r["status"] == "active" for r in rows("market_entity"))


def test_truth_is_a_plain_dataclass_of_the_documented_fields(generated):
    names = {f.name for f in dataclasses.fields(generated[0].truth)}
    assert {"archetype", "hidden", "monthly_income_per_capita", "financial_assets_per_capita", "properties",
            "residential_area_per_capita", "cars", "entities", "dibao_eligible", "low_income_eligible",
            "standard"} <= names
