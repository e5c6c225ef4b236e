"""One household record from the validated rows of every source (数出一源): members, facts with their provenance,
discrepancies across sources, and the assessment each programme uses.

Pure functions of their inputs (no store, no keys): ``unify`` takes the canonical rows per source, keyed by the
persons' pseudonyms, and returns the record's content without the envelope (hub.stages.records adds ids, signature,
version). Nothing here resolves a conflict silently: where sources disagree the record says so under
``discrepancies``, and a screening answer that depends on it becomes "needs_review".
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from hub.rules.standards import Rules, UnknownCounty
from schemas.codes import ANSHAN_DIVISIONS, birth_date_from_id, mask_id, sex_from_id, valid_id_mask
from schemas.vocabulary import AGENCY_SOURCES, ASSISTANCE_PROGRAMMES, FINANCIAL_SOURCES, NO, PROGRAMMES, REVIEW, YES

# Which source is authoritative for each fact (a fact is taken from its source and from nowhere else).
AUTHORITY: dict[str, str] = {
    "membership": "household", "identity": "household", "registration_status": "household",
    "wages": "tax", "labour": "tax", "business": "tax", "property_lease": "tax",
    "pension": "social_insurance", "unemployment": "social_insurance", "insurance_base": "social_insurance",
    "provident_fund": "provident_fund",
    "properties": "real_estate", "market_entities": "market_entity", "vehicles_vessels": "vehicles_vessels",
    "deposits": "bank", "securities": "securities", "insurance_cash_value": "commercial_insurance",
    "internet_finance": "internet_finance",
    "remote_registration": "remote_registry",  # other regions' platforms (DCI): registration and figures there
}
INCOME_CATEGORIES = ("wages", "labour", "business", "property_lease", "pension", "unemployment")
# the facts of the financial sources
FINANCIAL = tuple(fact for fact, source in AUTHORITY.items() if source in FINANCIAL_SOURCES)
# the sources the asset test and the income rest on (a record that lacks one of them is not screened "yes")
ASSET_SOURCES = (*(k for k in AGENCY_SOURCES if k in FINANCIAL_SOURCES), "real_estate", "vehicles_vessels",
                 "market_entity")
INCOME_SOURCES = ("tax", "social_insurance")


@dataclass(frozen=True)
class Applicant:
    """A member as the request names them: pseudonym, ID number, the name the applicant gave."""

    person_ref: str
    id_number: str
    name: str


# A screening reason's outcome: the test it reports passed, failed, or cannot be decided from the sources.
PASS, FAIL, PENDING = "pass", "fail", "review"


def _reason(code: str, zh: str, en: str, *, outcome: str | None = None, persons: list[str] | None = None,
            **values) -> dict:
    """A reason as data: its code (what a reader labels in their own language), the figures it rests on
    (``values``), the test's ``outcome`` and the members it concerns (``persons``, pseudonyms the access policy
    re-keys per department); ``text`` is kept, "zh / en", for the readers that show it as it is."""
    return {"code": code, "text": f"{zh} / {en}", **({"values": values} if values else {}),
            **({"outcome": outcome} if outcome else {}), **({"persons": sorted(set(persons))} if persons else {})}


def _decided(answer: str, reasons: list[dict], rules: Rules) -> dict:
    """A programme's screening: the answer and its reasons, each marked ``decisive`` when it is what the answer
    rests on (for "no" the failed tests, for "needs_review" what cannot be decided, for "yes" every passed test)."""
    wanted = {NO: FAIL, REVIEW: PENDING, YES: PASS}[answer]
    return {"answer": answer, "reasons": [{**r, "decisive": r.get("outcome") == wanted} for r in reasons],
            "rules": rules.version}


def _month(value: str | None) -> str | None:
    return value[:7] if isinstance(value, str) and len(value) >= 7 else None


def _months_back(end: str, n: int) -> list[str]:
    y, m = int(end[:4]), int(end[5:7])
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def _age(birth: str | None, on: dt.date) -> int | None:
    if not birth:
        return None
    b = dt.date.fromisoformat(birth)
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


# -- members ----------------------------------------------------------------------------------------------------------
def resolve_members(applicants: list[Applicant], registration: list[dict], on: dt.date, keyed) -> tuple[str, list[dict], list[dict]]:
    """(household number, members, discrepancies). ``keyed`` maps an ID number to its pseudonym.

    Members are resolved by the pseudonym of their ID number. Household registration is authoritative for
    membership and identity; name, birth date and sex are compared with the application and the ID number."""
    by_ref = {keyed(r["id_number"]): r for r in registration}
    numbers = defaultdict(int)
    for a in applicants:
        if a.person_ref in by_ref:
            numbers[by_ref[a.person_ref]["household_no"]] += 1
    if not numbers:
        raise ValueError("household registration returned none of the members")
    household_no = max(sorted(numbers), key=lambda n: numbers[n])
    discrepancies, members = [], []
    for a in applicants:
        reg = by_ref.get(a.person_ref)
        if reg is None:
            discrepancies.append({"kind": "member_not_registered", "person_ref": a.person_ref, "sources": ["household"],
                                  **_reason("MEMBER_NOT_REGISTERED", "户籍中未找到该成员", "household registration has no "
                                            "row for this member")})
            continue
        if reg["household_no"] != household_no:
            discrepancies.append({"kind": "member_other_household", "person_ref": a.person_ref,
                                  "sources": ["application", "household"],
                                  **_reason("MEMBER_OTHER_HOUSEHOLD", "该成员户籍登记在另一户",
                                            "this member is registered in another household")})
            continue
        if reg["name"] != a.name:
            discrepancies.append({"kind": "name_differs", "person_ref": a.person_ref,
                                  "sources": ["application", "household"],
                                  **_reason("NAME_DIFFERS", "申请填写的姓名与户籍登记不一致",
                                            "the name on the application differs from household registration")})
        if valid_id_mask([a.id_number])[0]:
            if reg["birth_date"] != birth_date_from_id(a.id_number).isoformat():
                discrepancies.append({"kind": "birth_date_differs", "person_ref": a.person_ref,
                                      "sources": ["id_number", "household"],
                                      **_reason("BIRTH_DATE_DIFFERS", "出生日期与身份证号不一致",
                                                "the birth date differs from the ID number")})
            if reg["sex"] != sex_from_id(a.id_number):
                discrepancies.append({"kind": "sex_differs", "person_ref": a.person_ref,
                                      "sources": ["id_number", "household"],
                                      **_reason("SEX_DIFFERS", "性别与身份证号不一致", "the sex differs from the ID number")})
        members.append({"person_ref": a.person_ref, "id_number_masked": mask_id(a.id_number), "name": reg["name"],
                        "sex": reg["sex"],
                        "birth_date": reg["birth_date"], "age": _age(reg["birth_date"], on), "relation": reg["relation"],
                        "status": reg["status"], "address_code": reg.get("address_code"),
                        "counted": reg["status"] == "normal", "from": "household"})
    return household_no, members, discrepancies


# -- facts ------------------------------------------------------------------------------------------------------------
def collect_facts(rows: dict[str, list[dict]], refs: set[str], keyed) -> dict[str, list[dict]]:
    """Every fact of the members, from its authoritative source, each naming it (``from``)."""
    facts: dict[str, list[dict]] = {k: [] for k in ("income", "contributions", "provident_fund", "properties",
                                                    "market_entities", "vehicles_vessels", *FINANCIAL)}

    def mine(source):
        for r in rows.get(source) or ():
            ref = keyed(r["id_number"])
            if ref in refs:
                yield ref, r

    for ref, r in mine("tax"):
        facts["income"].append({"person_ref": ref, "category": r["income_type"], "period": r["period"],
                                "amount": r["amount"], "tax": r.get("tax"), "payer": r.get("withholder_uscc"),
                                "from": "tax"})
    for ref, r in mine("social_insurance"):
        if r["kind"] == "benefit":
            facts["income"].append({"person_ref": ref, "category": r["insurance_type"], "period": r["period"],
                                    "amount": r["amount"], "from": "social_insurance"})
        else:
            facts["contributions"].append({"person_ref": ref, "insurance_type": r["insurance_type"],
                                           "period": r["period"], "base": r.get("base"), "amount": r["amount"],
                                           "from": "social_insurance"})
    for ref, r in mine("provident_fund"):
        facts["provident_fund"].append({"person_ref": ref, "period": r["period"], "base": r["base"],
                                        "balance": r["balance"], "employer": r.get("employer_uscc"),
                                        "from": "provident_fund"})
    for ref, r in mine("real_estate"):
        facts["properties"].append({"person_ref": ref, "cert_no": r["cert_no"], "use": r["use"], "area": r["area"],
                                    "share": r["share"], "location_code": r["location_code"],
                                    "acquired": r["acquired"], "mortgaged": r.get("mortgaged"), "from": "real_estate"})
    for ref, r in mine("market_entity"):
        facts["market_entities"].append({"person_ref": ref, "uscc": r["uscc"], "name": r["name"], "role": r["role"],
                                         "registered_capital": r.get("registered_capital"), "share": r.get("share"),
                                         "status": r["status"], "established": r.get("established"),
                                         "from": "market_entity"})
    for ref, r in mine("vehicles_vessels"):
        facts["vehicles_vessels"].append({"person_ref": ref, "kind": r["kind"], "plate": r["plate"], "type": r["type"],
                                          "purchase_price": r.get("purchase_price"), "registered": r.get("registered"),
                                          "status": r["status"], "disability_adapted": bool(r.get("disability_adapted")),
                                          "from": "vehicles_vessels"})
    for ref, r in mine("bank"):
        facts["deposits"].append({"person_ref": ref, "bank": r["bank"], "account": r["account"],
                                  "product": r["product"], "period": r["period"], "balance": r["balance"],
                                  "from": "bank"})
    for ref, r in mine("securities"):
        facts["securities"].append({"person_ref": ref, "firm": r["firm"], "security_code": r["security_code"],
                                    "quantity": r["quantity"], "market_value": r["market_value"],
                                    "as_of": r.get("as_of"), "from": "securities"})
    for ref, r in mine("commercial_insurance"):
        facts["insurance_cash_value"].append({"person_ref": ref, "insurer": r["insurer"], "policy_no": r["policy_no"],
                                              "type": r["type"], "cash_value": r["cash_value"],
                                              "from": "commercial_insurance"})
    for ref, r in mine("internet_finance"):
        facts["internet_finance"].append({"person_ref": ref, "platform": r["platform"], "product": r["product"],
                                          "balance": r["balance"], "as_of": r.get("as_of"),
                                          "from": "internet_finance"})
    for items in facts.values():
        items.sort(key=lambda f: (f["person_ref"], *(str(v) for k, v in sorted(f.items()) if k != "person_ref")))
    return facts


def income_window(facts: dict[str, list[dict]], as_of: dt.date, months: int) -> list[str]:
    """The ``months`` months ending with the latest month any monthly source (tax, social insurance, provident
    fund, bank) reports up to ``as_of`` (the month before ``as_of`` when none does)."""
    limit = as_of.strftime("%Y-%m")
    monthly = facts["income"] + facts["contributions"] + facts["provident_fund"] + facts["deposits"]
    reported = [f["period"] for f in monthly if f["period"] <= limit]
    if reported:
        end = max(reported)
    else:
        first = as_of.replace(day=1) - dt.timedelta(days=1)
        end = first.strftime("%Y-%m")
    return _months_back(end, months)


# -- discrepancies ----------------------------------------------------------------------------------------------------
def find_discrepancies(members: list[dict], facts: dict[str, list[dict]], window: list[str],
                       rules: Rules) -> list[dict]:
    """Where sources disagree, or a fact cannot be true of the person it is recorded for."""
    out = []
    status = {m["person_ref"]: m["status"] for m in members}
    ages = {m["person_ref"]: m["age"] for m in members}
    months = set(window)
    wages: dict[tuple[str, str], float] = defaultdict(float)
    for f in facts["income"]:
        if f["category"] == "wages" and f["period"] in months:
            wages[(f["person_ref"], f["period"])] += f["amount"]
    si_base = {(f["person_ref"], f["period"]): f["base"] for f in facts["contributions"]
               if f["insurance_type"] == "pension" and f["period"] in months and f["base"] is not None}
    pf_base = {(f["person_ref"], f["period"]): f["base"] for f in facts["provident_fund"] if f["period"] in months}
    tol = rules.base_tolerance

    def far(a: float, b: float) -> bool:
        return abs(a - b) > tol * max(abs(b), 1.0)

    per_person: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key in sorted(set(wages) | set(si_base)):
        w, b = wages.get(key, 0.0), si_base.get(key)
        expected = min(max(w, rules.si_base_floor), rules.si_base_ceiling)
        if b is not None and (w == 0.0 or far(b, expected)):
            per_person[(key[0], "wages_vs_insurance_base")].append(key[1])
    for key in sorted(set(wages) | set(pf_base)):
        w, b = wages.get(key, 0.0), pf_base.get(key)
        if b is not None and far(b, w):
            per_person[(key[0], "wages_vs_provident_base")].append(key[1])
    texts = {
        "wages_vs_insurance_base": ("WAGES_VS_INSURANCE_BASE", "税务申报工资与社保缴费基数不符",
                                    "wages declared to tax do not match the social-insurance contribution base",
                                    ["tax", "social_insurance"]),
        "wages_vs_provident_base": ("WAGES_VS_PROVIDENT_BASE", "税务申报工资与公积金缴存基数不符",
                                    "wages declared to tax do not match the provident-fund contribution base",
                                    ["tax", "provident_fund"]),
    }
    for (ref, kind), periods in sorted(per_person.items()):
        code, zh, en, sources = texts[kind]
        out.append({"kind": kind, "person_ref": ref, "sources": sources, "periods": periods,
                    **_reason(code, f"{zh}（{len(periods)} 个月）", f"{en} ({len(periods)} months)")})

    for ref in sorted(r for r, s in status.items() if s == "deceased"):
        vehicles = [f for f in facts["vehicles_vessels"] if f["person_ref"] == ref and f["status"] == "normal"]
        if vehicles:
            out.append({"kind": "deceased_owner_vehicle", "person_ref": ref,
                        "sources": ["household", "vehicles_vessels"],
                        **_reason("DECEASED_OWNER_VEHICLE", "已注销户籍（死亡）人员名下仍有在用车辆或船舶",
                                  "a deceased member still owns a vehicle or vessel in use", count=len(vehicles))})
        paid = [f for f in facts["income"] if f["person_ref"] == ref and f["period"] in months]
        if paid:
            out.append({"kind": "deceased_member_income", "person_ref": ref,
                        "sources": ["household", *sorted({f["from"] for f in paid})],
                        **_reason("DECEASED_MEMBER_INCOME", "已死亡人员在核对期内仍有收入或待遇发放",
                                  "a deceased member still has income or benefits in the window", months=len(
                                      {f["period"] for f in paid}))})
        active = [f for f in facts["market_entities"] if f["person_ref"] == ref and f["status"] == "active"]
        if active:
            out.append({"kind": "deceased_member_entity", "person_ref": ref, "sources": ["household", "market_entity"],
                        **_reason("DECEASED_MEMBER_ENTITY", "已死亡人员仍登记为存续企业的法定代表人、股东或经营者",
                                  "a deceased member is still recorded in an active market entity")})
    for ref in sorted(r for r, a in ages.items() if a is not None and a < rules.working_age[0]):
        roles = [f for f in facts["market_entities"] if f["person_ref"] == ref and f["status"] == "active"
                 and f["role"] in rules.counted_entity_roles]
        if roles:
            out.append({"kind": "minor_in_entity", "person_ref": ref, "sources": ["household", "market_entity"],
                        **_reason("MINOR_IN_ENTITY", "未成年人登记为存续企业的法定代表人或股东",
                                  "a minor is legal representative or shareholder of an active market entity")})
    return out


# -- assessment -------------------------------------------------------------------------------------------------------
def _money(x: float) -> float:
    return round(x + 0.0, 2)


def assess(members: list[dict], facts: dict[str, list[dict]], window: list[str], rules: Rules, county: str,
           area_type: str, completeness: dict[str, str], discrepancies: list[dict]) -> dict:
    """Income, assets and the screening of each programme, under ``rules``."""
    counted = {m["person_ref"] for m in members if m["counted"]}
    n = max(1, len(counted))
    months = set(window)
    standard = rules.standard(county, area_type)
    rural = area_type == "rural"

    by_category = {c: 0.0 for c in INCOME_CATEGORIES}
    own_income: dict[str, float] = defaultdict(float)
    for f in facts["income"]:
        if f["person_ref"] in counted and f["period"] in months:
            by_category[f["category"]] = by_category.get(f["category"], 0.0) + f["amount"]
            own_income[f["person_ref"]] += f["amount"]
    monthly = {c: _money(v / len(window)) for c, v in by_category.items()}
    total_monthly = _money(sum(by_category.values()) / len(window))
    per_capita = _money(sum(by_category.values()) / len(window) / n)

    last = window[-1]
    financial = {
        "deposits": sum(f["balance"] for f in facts["deposits"] if f["person_ref"] in counted and f["period"] == last),
        "securities": sum(f["market_value"] for f in facts["securities"] if f["person_ref"] in counted),
        "insurance_cash_value": sum(f["cash_value"] for f in facts["insurance_cash_value"] if f["person_ref"] in counted),
        "internet_finance": sum(f["balance"] for f in facts["internet_finance"] if f["person_ref"] in counted),
    }
    financial = {k: _money(v) for k, v in financial.items()}
    financial_pc = _money(sum(financial.values()) / n)
    residential = {}
    for f in facts["properties"]:
        if f["person_ref"] in counted and f["use"] == "residential":
            residential[f["cert_no"]] = residential.get(f["cert_no"], 0.0) + f["area"] * f["share"]
    area_pc = _money(sum(residential.values()) / n)

    def is_car(f: dict) -> bool:
        return (f["person_ref"] in counted and f["status"] == "normal" and f["kind"] == "vehicle"
                and f["type"] in rules.counted_vehicle_types and not f["disability_adapted"])

    def is_vessel(f: dict) -> bool:
        return (f["person_ref"] in counted and f["status"] == "normal" and f["kind"] == "vessel"
                and not (rural and f["type"] in rules.exempt_rural_vessel_types))

    def is_entity(f: dict) -> bool:
        return f["person_ref"] in counted and f["status"] == "active" and f["role"] in rules.counted_entity_roles

    cars = {f["plate"] for f in facts["vehicles_vessels"] if is_car(f)}
    vessels = {f["plate"] for f in facts["vehicles_vessels"] if is_vessel(f)}
    entities = {f["uscc"] for f in facts["market_entities"] if is_entity(f)}

    def owners(items, keep) -> list[str]:
        return [f["person_ref"] for f in items if keep(f)]

    limit = rules.asset_months * standard
    failures = []
    if financial_pc > limit:
        failures.append(_reason("FINANCIAL_ASSETS_ABOVE_LIMIT", f"人均金融资产 {financial_pc:.2f} 元超过 {limit:.2f} 元",
                                f"financial assets per capita {financial_pc:.2f} yuan exceed {limit:.2f} yuan",
                                outcome=FAIL, financial_per_capita=financial_pc, limit=_money(limit)))
    if len(residential) > rules.max_residential_properties:
        failures.append(_reason("PROPERTIES_ABOVE_LIMIT", f"住宅 {len(residential)} 套，超过 {rules.max_residential_properties} 套",
                                f"{len(residential)} residential properties, more than "
                                f"{rules.max_residential_properties}", outcome=FAIL,
                                persons=owners(facts["properties"], lambda f: f["person_ref"] in counted
                                               and f["use"] == "residential"),
                                count=len(residential), limit=rules.max_residential_properties))
    if cars:
        failures.append(_reason("OWNS_VEHICLE", f"拥有机动车 {len(cars)} 辆（非残疾人功能性补偿代步）",
                                f"owns {len(cars)} car(s) or truck(s) not adapted for a disability", outcome=FAIL,
                                persons=owners(facts["vehicles_vessels"], is_car), count=len(cars)))
    if vessels:
        failures.append(_reason("OWNS_VESSEL", f"拥有船舶 {len(vessels)} 艘", f"owns {len(vessels)} vessel(s)",
                                outcome=FAIL, persons=owners(facts["vehicles_vessels"], is_vessel),
                                count=len(vessels)))
    if entities:
        failures.append(_reason("RUNS_MARKET_ENTITY", f"为 {len(entities)} 家存续企业的法定代表人或股东",
                                f"legal representative or shareholder of {len(entities)} active market entities",
                                outcome=FAIL, persons=owners(facts["market_entities"], is_entity),
                                count=len(entities)))
    missing_assets = [s for s in ASSET_SOURCES if completeness.get(s) != "complete"]
    missing_income = [s for s in INCOME_SOURCES if completeness.get(s) != "complete"]
    if completeness.get("household") != "complete":
        missing_income.append("household")
    passes = not failures
    asset_test = {"passes": passes if not missing_assets or failures else None, "failures": failures,
                  "limit_per_capita": _money(limit), "incomplete_sources": missing_assets}

    def screen(programme: str, income_ok: bool | None, income_reason: dict, extra_no: list[dict] | None = None) -> dict:
        reasons = [income_reason]
        if failures:
            reasons += failures
        elif not missing_assets:
            reasons.append(_reason("ASSET_TEST_PASSED", f"通过资产核查（规则 {rules.version}）",
                                   f"passes the {programme} asset test under rules {rules.version}", outcome=PASS,
                                   rules=rules.version))
        reasons += extra_no or []
        if failures or income_ok is False or extra_no:
            return _decided(NO, reasons, rules)
        pending = []
        if missing_assets or missing_income:
            pending.append(_reason("SOURCES_INCOMPLETE", "以下数据来源不完整：" + "、".join(missing_income + missing_assets),
                                   "incomplete sources: " + ", ".join(missing_income + missing_assets),
                                   outcome=PENDING, sources=missing_income + missing_assets))
        if discrepancies:
            pending.append(_reason("DISCREPANCIES", f"存在 {len(discrepancies)} 项数据不一致，需人工复核",
                                   f"{len(discrepancies)} discrepancies between sources need review", outcome=PENDING,
                                   persons=[d["person_ref"] for d in discrepancies if d.get("person_ref")],
                                   count=len(discrepancies)))
        if pending:
            return _decided(REVIEW, reasons + pending, rules)
        return _decided(YES, reasons, rules)

    low_line = rules.low_income_factor * standard
    below = per_capita < standard
    dibao = screen("dibao", below, _reason(
        "INCOME_BELOW_STANDARD" if below else "INCOME_AT_OR_ABOVE_STANDARD",
        f"人均月收入 {per_capita:.2f} 元{'低于' if below else '不低于'}低保标准 {standard:.2f} 元",
        f"monthly income per capita {per_capita:.2f} yuan is {'below' if below else 'not below'} the dibao "
        f"standard of {standard:.2f} yuan", outcome=PASS if below else FAIL, per_capita=per_capita,
        standard=standard))
    in_band = standard <= per_capita < low_line
    low_income = screen("low_income", in_band, _reason(
        "INCOME_IN_LOW_INCOME_BAND" if in_band else "INCOME_OUTSIDE_LOW_INCOME_BAND",
        f"人均月收入 {per_capita:.2f} 元{'在' if in_band else '不在'}低保标准至 {rules.low_income_factor} 倍"
        f"（{standard:.2f}–{low_line:.2f} 元）之间",
        f"monthly income per capita {per_capita:.2f} yuan is {'within' if in_band else 'outside'} "
        f"[{standard:.2f}, {low_line:.2f}) yuan", outcome=PASS if in_band else FAIL, per_capita=per_capita,
        standard=standard, low_income_line=_money(low_line)))

    lo, hi = rules.working_age
    supporters = [m for m in members if m["counted"] and m["age"] is not None and lo <= m["age"] < hi
                  and own_income.get(m["person_ref"], 0.0) > 0]
    candidates = [m["person_ref"] for m in members if m["counted"] and m["age"] is not None
                  and not lo <= m["age"] < hi and own_income.get(m["person_ref"], 0.0) == 0]
    if candidates and not supporters:
        tekun_income = _reason("NO_INCOME_NO_SUPPORTER", f"{len(candidates)} 名老年人或未成年人无收入来源，且无有收入的劳动年龄成员",
                               f"{len(candidates)} elderly or minor members have no income and no working-age member "
                               "with income can support them", outcome=PASS, persons=candidates,
                               count=len(candidates))
        tekun_income["values"]["persons"] = candidates  # where readers of earlier records found them
        tekun = screen("tekun", True, tekun_income)
        if tekun["answer"] == YES:  # work capacity lost to disability is in no source: always confirmed by hand
            tekun = _decided(REVIEW, tekun["reasons"] + [_reason(
                "SUPPORTERS_NOT_IN_SOURCES", "户外的法定赡养、抚养、扶养义务人及其能力不在任何数据源中，需人工确认",
                "supporters living outside the household, and their means, are in no source: confirm by hand",
                outcome=PENDING)], rules)
    else:
        if supporters:
            why = _reason("HAS_SUPPORTER", "有劳动年龄成员有收入，可履行赡养、抚养或扶养义务",
                          "a working-age member with income can support the household", outcome=FAIL,
                          persons=[m["person_ref"] for m in supporters])
        else:
            why = _reason("NO_MEMBER_WITHOUT_WORK_CAPACITY_BY_AGE", "无无收入的老年或未成年成员",
                          "no elderly or minor member without income", outcome=FAIL)
        tekun = _decided(NO, [why], rules)

    spend_line = rules.expenditure_factor * standard
    if low_line <= per_capita < spend_line and not failures:
        expenditure = _decided(REVIEW, [_reason(
            "EXPENDITURE_NOT_IN_SOURCES", f"人均月收入 {per_capita:.2f} 元在低收入线与 {rules.expenditure_factor} 倍低保标准之间；"
            "医疗、教育等刚性支出不在任何数据源中，需经办人核实",
            f"monthly income per capita {per_capita:.2f} yuan lies between the low-income line and "
            f"{rules.expenditure_factor} x the standard; medical and education costs are in no source: the "
            "caseworker must add them", outcome=PENDING, per_capita=per_capita, low_income_line=_money(low_line),
            expenditure_line=_money(spend_line))], rules)
    else:
        expenditure = _decided(NO, failures or [_reason(
            "INCOME_OUTSIDE_EXPENDITURE_BAND", f"人均月收入 {per_capita:.2f} 元不在低收入线至 {spend_line:.2f} 元之间",
            f"monthly income per capita {per_capita:.2f} yuan is not between the low-income line and "
            f"{spend_line:.2f} yuan", outcome=FAIL, per_capita=per_capita, low_income_line=_money(low_line),
            expenditure_line=_money(spend_line))], rules)

    return {
        "rules": rules.version,
        "standard": {"county": county, "area_type": area_type, "dibao_monthly": standard,
                     "low_income_line": _money(low_line)},
        "window": {"from": window[0], "to": window[-1], "months": len(window)},
        "members_counted": len(counted),
        "income": {"monthly_total": total_monthly, "monthly_per_capita": per_capita, "monthly_by_category": monthly},
        "assets": {**financial, "financial_total": _money(sum(financial.values())),
                   "financial_per_capita": financial_pc, "residential_properties": len(residential),
                   "residential_area_per_capita": area_pc, "cars": len(cars), "vessels": len(vessels),
                   "market_entities": len(entities)},
        "asset_test": asset_test,
        "screening": {"dibao": dibao, "low_income": low_income, "tekun": tekun, "expenditure_poverty": expenditure},
        "details": details(facts, window, counted, is_car, is_vessel, is_entity, residential),
    }


def details(facts: dict[str, list[dict]], window: list[str], counted: set[str], is_car, is_vessel, is_entity,
            residential: dict[str, float]) -> dict:
    """The facts behind the assessment's counts, so that a reader sees which car, which flat, which company and
    which income a figure rests on: every vehicle, vessel, property and market entity of the members (``counted``:
    whether the asset test counts it), the counted members' income per category and month of the window, and their
    financial assets one by one. Registration numbers, certificates and account numbers are left out: what
    identifies the item to its owner is not needed to see why it counts."""
    months = set(window)
    by_month: dict[str, dict[str, float]] = {}
    for f in facts["income"]:
        if f["person_ref"] in counted and f["period"] in months:
            row = by_month.setdefault(f["category"], {})
            row[f["period"]] = _money(row.get(f["period"], 0.0) + f["amount"])
    last = window[-1]
    financial = (
        [{"kind": "deposits", "person_ref": f["person_ref"], "institution": f["bank"], "product": f["product"],
          "amount": _money(f["balance"])}
         for f in facts["deposits"] if f["person_ref"] in counted and f["period"] == last]
        + [{"kind": "securities", "person_ref": f["person_ref"], "institution": f["firm"],
            "product": f["security_code"], "amount": _money(f["market_value"])}
           for f in facts["securities"] if f["person_ref"] in counted]
        + [{"kind": "insurance_cash_value", "person_ref": f["person_ref"], "institution": f["insurer"],
            "product": f["type"], "amount": _money(f["cash_value"])}
           for f in facts["insurance_cash_value"] if f["person_ref"] in counted]
        + [{"kind": "internet_finance", "person_ref": f["person_ref"], "institution": f["platform"],
            "product": f["product"], "amount": _money(f["balance"])}
           for f in facts["internet_finance"] if f["person_ref"] in counted])
    return {
        "vehicles_vessels": [{"person_ref": f["person_ref"], "kind": f["kind"], "type": f["type"],
                              "purchase_price": f["purchase_price"], "year": _year(f.get("registered")),
                              "status": f["status"], "disability_adapted": f["disability_adapted"],
                              "counted": is_car(f) or is_vessel(f)} for f in facts["vehicles_vessels"]],
        "properties": [{"person_ref": f["person_ref"], "use": f["use"], "area": f["area"], "share": f["share"],
                        "county": str(f["location_code"])[:6], "acquired": f["acquired"],
                        "counted": f["person_ref"] in counted and f["cert_no"] in residential}
                       for f in facts["properties"]],
        "market_entities": [{"person_ref": f["person_ref"], "name": f["name"], "role": f["role"],
                             "registered_capital": f["registered_capital"], "share": f["share"], "status": f["status"],
                             "counted": is_entity(f)} for f in facts["market_entities"]],
        "income": {"months": window, "by_category": by_month},
        "financial": financial,
    }


def _year(value) -> int | None:
    return int(value[:4]) if isinstance(value, str) and value[:4].isdigit() else None


def unify(applicants: list[Applicant], rows: dict[str, list[dict]], completeness: dict[str, str], as_of: dt.datetime,
          rules: Rules, keyed) -> tuple[str, dict]:
    """(household number, content): members, facts, discrepancies and assessment of one household."""
    on = as_of.date()
    household_no, members, discrepancies = resolve_members(applicants, rows.get("household") or [], on, keyed)
    refs = {m["person_ref"] for m in members}
    facts = collect_facts(rows, refs, keyed)
    window = income_window(facts, on, rules.income_months)
    discrepancies += find_discrepancies(members, facts, window, rules)
    if "remote_registry" in rows:  # other regions' platforms were asked (connectors.dci_remote)
        facts["remote_registrations"] = remote_registrations(rows["remote_registry"],
                                                             {a.person_ref for a in applicants}, keyed)
        discrepancies += remote_discrepancies(members, facts["remote_registrations"])
    division = next((m["address_code"] for m in members if m["relation"] == "head" and m["address_code"]),
                    next((m["address_code"] for m in members if m["address_code"]), None))
    name, area_type = ANSHAN_DIVISIONS.get(division, ("", "unknown"))
    try:
        assessment = assess(members, facts, window, rules, division, area_type, completeness, discrepancies)
    except UnknownCounty:
        why = _reason("NO_STANDARD_FOR_DIVISION", "户籍地址不在本市辖区，无适用的救助标准",
                      "the registered address is outside the city's divisions: no standard applies", outcome=PENDING)
        assessment = {"rules": rules.version, "window": {"from": window[0], "to": window[-1], "months": len(window)},
                      "screening": {p: _decided(REVIEW, [why], rules) for p in PROGRAMMES}}
    return household_no, {"division": {"code": division, "name": name, "area_type": area_type},
                          "members": members, "facts": facts, "discrepancies": discrepancies,
                          "assessment": assessment, "authority": AUTHORITY}


# -- other regions (跨地区核对) ---------------------------------------------------------------------------------------
def remote_registrations(rows: list[dict], refs: set[str], keyed) -> list[dict]:
    """What other regions' platforms answered about the applicants (every applicant, registered here or not): where
    they are registered and how, the record it comes from, their own income there, that household's figures and
    screening answers; each names its platform (``registry``)."""
    out = []
    for r in rows:
        ref = keyed(r["id_number"])
        if ref not in refs:
            continue
        out.append({"person_ref": ref, "registry": r["registry"], "household": r.get("household_ref"),
                    "status": r.get("status"), "relation": r.get("relation"), "division": r.get("division_code"),
                    "record_version": r.get("record_version"), "record_as_of": r.get("record_as_of"),
                    "record_sha256": r.get("record_sha256"), "income_total": r.get("income_total"),
                    "income_months": r.get("income_months"), "members_counted": r.get("members_counted"),
                    "income_per_capita": r.get("income_per_capita"),
                    "screening": {p: r[p] for p in PROGRAMMES if r.get(p)}, "from": "remote_registry"})
    out.sort(key=lambda f: (f["person_ref"], f["registry"], str(f["household"])))
    return out


def remote_discrepancies(members: list[dict], registrations: list[dict]) -> list[dict]:
    """A member registered (normal) both here and in another region; a member whose household in another region
    screens as eligible there (assistance must not be paid twice)."""
    out = []
    here = {m["person_ref"]: m["status"] for m in members}
    for reg in registrations:
        if reg["status"] == "normal" and here.get(reg["person_ref"]) == "normal":
            out.append({"kind": "registered_in_another_region", "person_ref": reg["person_ref"],
                        "sources": ["household", "remote_registry"], "registry": reg["registry"],
                        **_reason("REGISTERED_IN_ANOTHER_REGION", f"该成员在外地（{reg['registry']}）也登记为正常户口",
                                  f"the member is also registered, with normal status, at {reg['registry']}")})
        eligible = [p for p in ASSISTANCE_PROGRAMMES if reg["screening"].get(p) == YES]
        if eligible:
            out.append({"kind": "assistance_eligible_elsewhere", "person_ref": reg["person_ref"],
                        "sources": ["remote_registry"], "registry": reg["registry"], "programmes": eligible,
                        **_reason("ASSISTANCE_ELIGIBLE_ELSEWHERE",
                                  f"该成员在外地（{reg['registry']}）的家庭被认定符合{'、'.join(eligible)}条件，"
                                  "需核实是否已享受救助，防止重复救助",
                                  f"the member's household at {reg['registry']} screens as eligible for "
                                  f"{', '.join(eligible)} there: check that assistance is not paid twice")})
    return out


# -- what changed between two versions --------------------------------------------------------------------------------
MATERIAL_SHARE = 0.10  # a figure that moves by at least this share is a material change


def material_changes(before: dict | None, after: dict) -> list[dict]:
    """The material changes from one version of a household's record to the next: membership, screening answers,
    asset-test counts, income and financial assets per capita moving by 10% or more, sources' completeness, new
    discrepancies. Each change names its field; values are left in the records (a notification carries none)."""
    if before is None:
        return [{"field": "record", "change": "first_version"}]
    out = []
    b_members = {m["person_ref"]: m["status"] for m in before.get("members", [])}
    a_members = {m["person_ref"]: m["status"] for m in after.get("members", [])}
    for ref in sorted(set(b_members) | set(a_members)):
        if ref not in b_members:
            out.append({"field": "members", "change": "added", "person_ref": ref})
        elif ref not in a_members:
            out.append({"field": "members", "change": "removed", "person_ref": ref})
        elif b_members[ref] != a_members[ref]:
            out.append({"field": "members.status", "change": f"{b_members[ref]}->{a_members[ref]}", "person_ref": ref})
    b_as, a_as = before.get("assessment", {}), after.get("assessment", {})
    for p in PROGRAMMES:
        was = b_as.get("screening", {}).get(p, {}).get("answer")
        now = a_as.get("screening", {}).get(p, {}).get("answer")
        if was != now:
            out.append({"field": f"screening.{p}", "change": f"{was}->{now}"})
    for k in ("residential_properties", "cars", "vessels", "market_entities"):
        was, now = b_as.get("assets", {}).get(k), a_as.get("assets", {}).get(k)
        if was != now:
            out.append({"field": f"assets.{k}", "change": "increased" if (now or 0) > (was or 0) else "decreased"})
    for group, k in (("income", "monthly_per_capita"), ("assets", "financial_per_capita")):
        was, now = b_as.get(group, {}).get(k), a_as.get(group, {}).get(k)
        if was is not None and now is not None and abs(now - was) >= MATERIAL_SHARE * max(abs(was), 1.0):
            out.append({"field": f"{group}.{k}", "change": "increased" if now > was else "decreased"})
    b_src = {k: v.get("status") for k, v in before.get("sources", {}).items()}
    for k, v in sorted(after.get("sources", {}).items()):
        if b_src.get(k) != v.get("status"):
            out.append({"field": f"sources.{k}", "change": f"{b_src.get(k)}->{v.get('status')}"})
    seen = {(d["kind"], d.get("person_ref")) for d in before.get("discrepancies", [])}
    for d in after.get("discrepancies", []):
        if (d["kind"], d.get("person_ref")) not in seen:
            out.append({"field": "discrepancies", "change": d["kind"], "person_ref": d.get("person_ref")})
    return out
