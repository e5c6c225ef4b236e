"""The record page's view-model: the record as the access policy cut it for a department, turned into what the
caseworker reads, in their language: a verdict per programme with the reason that decided it first and the tests
that passed shown as passed, the members a reason, a discrepancy or an incomplete source concerns named, the cars,
flats, companies, income and financial assets behind each count, every code labelled.

Pure functions of the cut content, the department's case (hub.services.cases) and the language: no store, no
request; the console's own tables (pages.REASON_NAMES, TEXT) for its words. A code the tables below do not know is
never shown raw: the record's own text in that language is used, else a neutral label.
"""

from __future__ import annotations

from hub.web.console.pages import REASON_NAMES, TEXT, department_label
from schemas.codes import ANSHAN_DIVISIONS, CITY, division_name
from schemas.vocabulary import (
    ANSWER_NAMES,
    NO,
    PROGRAMME_NAMES,
    PURPOSE_NAMES,
    RELATION_NAMES,
    REVIEW,
    SOURCE_NAMES,
    STATUS_NAMES,
    YES,
)

L = tuple[str, str]  # (zh, en)

COUNTIES: dict[str, L] = {code: division_name(code) for code in (*ANSHAN_DIVISIONS, CITY[0])}
OUTCOMES: dict[str, L] = {"pass": ("通过", "passed"), "fail": ("未通过", "failed"), "review": ("待核实", "to confirm")}
# reasons' outcomes for records published before reasons carried theirs
PASSING = frozenset({"ASSET_TEST_PASSED", "INCOME_BELOW_STANDARD", "INCOME_IN_LOW_INCOME_BAND",
                     "NO_INCOME_NO_SUPPORTER"})
PENDING = frozenset({"SOURCES_INCOMPLETE", "DISCREPANCIES", "SUPPORTERS_NOT_IN_SOURCES", "EXPENDITURE_NOT_IN_SOURCES",
                     "NO_STANDARD_FOR_DIVISION"})
WANTED = {NO: "fail", REVIEW: "review", YES: "pass"}

# screening reasons (hub.rules.unify), with the figures they rest on
REASONS: dict[str, L] = {
    "INCOME_BELOW_STANDARD": ("人均月收入 {per_capita:,.2f} 元，低于低保标准 {standard:,.2f} 元",
                              "Monthly income per person {per_capita:,.2f} yuan is below the dibao standard of "
                              "{standard:,.2f} yuan"),
    "INCOME_AT_OR_ABOVE_STANDARD": ("人均月收入 {per_capita:,.2f} 元，不低于低保标准 {standard:,.2f} 元",
                                    "Monthly income per person {per_capita:,.2f} yuan is not below the dibao standard "
                                    "of {standard:,.2f} yuan"),
    "INCOME_IN_LOW_INCOME_BAND": ("人均月收入 {per_capita:,.2f} 元，在低收入区间（{standard:,.2f} 至 {low_income_line:,.2f} "
                                  "元）内", "Monthly income per person {per_capita:,.2f} yuan is within the low-income "
                                  "band ({standard:,.2f} to {low_income_line:,.2f} yuan)"),
    "INCOME_OUTSIDE_LOW_INCOME_BAND": ("人均月收入 {per_capita:,.2f} 元，不在低收入区间（{standard:,.2f} 至 "
                                       "{low_income_line:,.2f} 元）内", "Monthly income per person {per_capita:,.2f} "
                                       "yuan is outside the low-income band ({standard:,.2f} to {low_income_line:,.2f} "
                                       "yuan)"),
    "ASSET_TEST_PASSED": ("资产核查通过（车辆、住房、企业、金融资产均未超过限制）",
                          "Passes the asset test (vehicles, homes, companies and financial assets within the limits)"),
    "FINANCIAL_ASSETS_ABOVE_LIMIT": ("人均金融资产 {financial_per_capita:,.2f} 元，超过限额 {limit:,.2f} 元",
                                     "Financial assets per person {financial_per_capita:,.2f} yuan exceed the limit of "
                                     "{limit:,.2f} yuan"),
    "PROPERTIES_ABOVE_LIMIT": ("住宅 {count} 套，超过 {limit} 套", "{count} homes, more than {limit}"),
    "OWNS_VEHICLE": ("拥有机动车 {count} 辆（非残疾人功能性补偿代步）", "Owns {count} car(s) or truck(s) not adapted for a "
                     "disability"),
    "OWNS_VESSEL": ("拥有船舶 {count} 艘", "Owns {count} vessel(s)"),
    "RUNS_MARKET_ENTITY": ("为 {count} 家存续企业的法定代表人或股东", "Legal representative or shareholder of {count} "
                           "active companies"),
    "SOURCES_INCOMPLETE": ("以下数据来源不完整：{sources}", "Incomplete sources: {sources}"),
    "DISCREPANCIES": ("存在 {count} 项数据不一致，需人工复核", "{count} discrepancies between sources need review"),
    "NO_INCOME_NO_SUPPORTER": ("{count} 名老年人或未成年人无收入来源，且无有收入的劳动年龄成员",
                               "{count} elderly or minor members have no income and no working-age member with income"),
    "SUPPORTERS_NOT_IN_SOURCES": ("户外的法定赡养、抚养、扶养义务人及其能力不在任何数据源中，需人工确认",
                                  "Supporters living outside the household, and their means, are in no source: "
                                  "confirm by hand"),
    "HAS_SUPPORTER": ("有劳动年龄成员有收入，可履行赡养、抚养或扶养义务",
                      "A working-age member with income can support the household"),
    "NO_MEMBER_WITHOUT_WORK_CAPACITY_BY_AGE": ("无无收入的老年或未成年成员", "No elderly or minor member without income"),
    "EXPENDITURE_NOT_IN_SOURCES": ("人均月收入 {per_capita:,.2f} 元，在低收入线 {low_income_line:,.2f} 元与 "
                                   "{expenditure_line:,.2f} 元之间；医疗、教育等刚性支出不在任何数据源中，需经办人核实",
                                   "Monthly income per person {per_capita:,.2f} yuan lies between the low-income line "
                                   "of {low_income_line:,.2f} and {expenditure_line:,.2f} yuan; medical and education "
                                   "costs are in no source: the caseworker must add them"),
    "INCOME_OUTSIDE_EXPENDITURE_BAND": ("人均月收入 {per_capita:,.2f} 元，不在低收入线 {low_income_line:,.2f} 元至 "
                                        "{expenditure_line:,.2f} 元之间", "Monthly income per person {per_capita:,.2f} "
                                        "yuan is not between the low-income line of {low_income_line:,.2f} and "
                                        "{expenditure_line:,.2f} yuan"),
    "NO_STANDARD_FOR_DIVISION": ("户籍地址不在本市辖区，无适用的救助标准",
                                 "The registered address is outside the city: no standard applies"),
}
DISCREPANCIES: dict[str, L] = {
    "MEMBER_NOT_REGISTERED": ("户籍中未找到该成员", "Household registration has no row for this member"),
    "MEMBER_OTHER_HOUSEHOLD": ("该成员户籍登记在另一户", "This member is registered in another household"),
    "NAME_DIFFERS": ("申请填写的姓名与户籍登记不一致", "The name on the application differs from household registration"),
    "BIRTH_DATE_DIFFERS": ("出生日期与身份证号不一致", "The birth date differs from the ID number"),
    "SEX_DIFFERS": ("性别与身份证号不一致", "The sex differs from the ID number"),
    "WAGES_VS_INSURANCE_BASE": ("税务申报工资与社保缴费基数不符（{months} 个月）",
                                "Wages declared to tax do not match the social-insurance base ({months} months)"),
    "WAGES_VS_PROVIDENT_BASE": ("税务申报工资与公积金缴存基数不符（{months} 个月）",
                                "Wages declared to tax do not match the provident-fund base ({months} months)"),
    "DECEASED_OWNER_VEHICLE": ("已死亡人员名下仍有在用车辆或船舶", "A deceased member still owns a vehicle or vessel in use"),
    "DECEASED_MEMBER_INCOME": ("已死亡人员在核对期内仍有收入或待遇发放",
                               "A deceased member still has income or benefits in the window"),
    "DECEASED_MEMBER_ENTITY": ("已死亡人员仍登记为存续企业的法定代表人、股东或经营者",
                               "A deceased member is still recorded in an active company"),
    "MINOR_IN_ENTITY": ("未成年人登记为存续企业的法定代表人或股东",
                        "A minor is legal representative or shareholder of an active company"),
    "REGISTERED_IN_ANOTHER_REGION": ("该成员在外地（{registry}）也登记为正常户口",
                                     "The member is also registered, with normal status, at {registry}"),
    "ASSISTANCE_ELIGIBLE_ELSEWHERE": ("该成员在外地（{registry}）的家庭被认定符合{programmes}条件，需核实是否已享受救助",
                                      "The member's household at {registry} screens as eligible for {programmes} "
                                      "there: check that assistance is not paid twice"),
}
MEMBER_STATES: dict[str, L] = {
    "refused": ("未授权", "not authorized"), "not_found": ("该来源查无此人", "not known to the source"),
    "unanswered": ("未获答复", "not answered"), "silent": ("答复中遗漏", "left out of the answer"),
    "quarantined": ("数据未通过校验", "data failed validation"),
}
INCOME_CATEGORIES: dict[str, L] = {
    "wages": ("工资薪金", "Wages"), "labour": ("劳务报酬", "Labour"), "business": ("经营所得", "Business"),
    "property_lease": ("财产租赁", "Property lease"), "pension": ("养老金", "Pension"),
    "unemployment": ("失业保险金", "Unemployment benefit"),
}
FINANCIAL_KINDS: dict[str, L] = {
    "deposits": ("银行存款", "Bank deposits"), "securities": ("证券", "Securities"),
    "insurance_cash_value": ("商业保险现金价值", "Insurance cash value"),
    "internet_finance": ("互联网理财", "Internet finance"),
}
PRODUCTS: dict[str, L] = {
    "demand": ("活期", "demand"), "time_deposit": ("定期", "time deposit"), "wealth": ("理财", "wealth product"),
    "life": ("寿险", "life"), "annuity": ("年金险", "annuity"), "health": ("健康险", "health"),
    "accident": ("意外险", "accident"),
}
VEHICLE_TYPES: dict[str, L] = {
    "car": ("小型汽车", "car"), "truck": ("货车", "truck"), "motorcycle": ("摩托车", "motorcycle"),
    "fishing_vessel": ("渔船", "fishing vessel"), "cargo_vessel": ("货船", "cargo vessel"),
}
ITEM_STATUSES: dict[str, L] = {
    "normal": ("正常", "in use"), "scrapped": ("报废", "scrapped"), "seized": ("查封", "seized"),
    "active": ("存续", "active"), "revoked": ("吊销", "revoked"), "cancelled": ("注销", "cancelled"),
}
USES: dict[str, L] = {"residential": ("住宅", "home"), "commercial": ("商业", "commercial"),
                      "parking": ("车位", "parking"), "other": ("其他", "other")}
ROLES: dict[str, L] = {"legal_rep": ("法定代表人", "legal representative"), "shareholder": ("股东", "shareholder"),
                       "operator": ("经营者", "operator")}
AREA_TYPES: dict[str, L] = {"urban": ("城市", "urban"), "rural": ("农村", "rural")}
WORDS: dict[str, L] = {
    "unknown": ("未注明", "not given"), "other_reason": ("其他原因", "another reason"),
    "not_in_case": ("未列入本案的成员", "a member not named in this case"),
    "counted": ("计入", "counted"), "not_counted": ("不计入", "not counted"),
    "household": ("全户", "the household"),
}


def _pick(table: dict[str, L], key, i: int, default: str = "unknown") -> str:
    if key in table:
        return table[key][i]
    return WORDS[default][i]


def _half(text: str | None, i: int) -> str | None:
    """One language's half of a record's "zh / en" text, or None when it has no such halves."""
    if not text or " / " not in text:
        return None
    return text.split(" / ", 1)[i]


def money(x) -> str:
    return f"{x:,.2f}" if isinstance(x, (int, float)) else ""


class Names:
    """The members' names by the pseudonyms the department reads them under: the case's (every member the department
    named), else the record's members."""

    def __init__(self, content: dict, case, i: int):
        self.i = i
        self.by_ref = {m["person_ref"]: m.get("name") for m in content.get("members") or [] if m.get("person_ref")}
        if case is not None:
            self.by_ref.update({ref: m.name for ref, m in case.members.items()})

    def __call__(self, ref: str | None) -> str:
        if ref is None:
            return WORDS["household"][self.i]
        return self.by_ref.get(ref) or WORDS["not_in_case"][self.i]

    def all(self, refs) -> list[str]:
        return list(dict.fromkeys(self(r) for r in refs or []))


def reason_label(reason: dict, i: int, *, table: dict[str, L] = REASONS, extra: dict | None = None) -> str:
    """A reason in the user's language with its figures: from its code and values; the record's own text in that
    language when the code or a figure is not known here; never the code itself."""
    code = reason.get("code")
    values = {**(reason.get("values") or {}), **(extra or {})}
    if code in table:
        try:
            return table[code][i].format(**values)
        except (KeyError, ValueError, TypeError, IndexError):
            pass
    return _half(reason.get("text"), i) or WORDS["other_reason"][i]


def screening(content: dict, names: Names, i: int) -> list[dict]:
    """A verdict per programme: its badge, and its reasons with the deciding ones first, each with its outcome
    (passed, failed, to confirm) and the members it concerns."""
    out = []
    a = content.get("assessment") or {}
    if a.get("screening"):
        items = a["screening"].items()
    else:  # a rule granting answers only
        items = ((p, {"answer": ans, "reasons": []}) for p, ans in (content.get("answers") or {}).items())
    for programme, s in items:
        answer = s.get("answer")
        wanted = WANTED.get(answer)
        reasons = []
        for n, r in enumerate(s.get("reasons") or []):
            code = r.get("code")
            outcome = r.get("outcome") or ("pass" if code in PASSING else "review" if code in PENDING else "fail")
            decisive = r["decisive"] if "decisive" in r else outcome == wanted
            extra = {}
            sources = (r.get("values") or {}).get("sources")
            if isinstance(sources, list):
                extra["sources"] = ("、" if i == 0 else ", ").join(_pick(SOURCE_NAMES, k, i) for k in sources)
            reasons.append({"n": n, "code": code, "label": reason_label(r, i, extra=extra), "outcome": outcome,
                            "outcome_label": OUTCOMES[outcome][i] if outcome in OUTCOMES else "",
                            "decisive": bool(decisive), "members": names.all(r.get("persons"))})
        reasons.sort(key=lambda r: (not r["decisive"], r["n"]))
        out.append({"programme": programme, "name": _pick(PROGRAMME_NAMES | PURPOSE_NAMES, programme, i),
                    "answer": answer, "answer_label": _pick(ANSWER_NAMES, answer, i),
                    "badge": {YES: "yes", NO: "no", REVIEW: "review"}.get(answer, "review"), "reasons": reasons})
    return out


def discrepancies(content: dict, names: Names, i: int) -> list[dict]:
    out = []
    for d in content.get("discrepancies") or []:
        extra = {"months": len(d.get("periods") or []), "registry": d.get("registry") or "",
                 "programmes": ("、" if i == 0 else ", ").join(_pick(PROGRAMME_NAMES, p, i)
                                                              for p in d.get("programmes") or [])}
        out.append({"member": names(d.get("person_ref")), "label": reason_label(d, i, table=DISCREPANCIES, extra=extra),
                    "sources": [_pick(SOURCE_NAMES | {"application": ("申请材料", "the application"),
                                                      "id_number": ("身份证号", "the ID number")}, k, i)
                                for k in d.get("sources") or []]})
    return out


def sources(content: dict, names: Names, i: int) -> list[dict]:
    """Each source's completeness, why not complete, and the members it was incomplete for."""
    out = []
    for key, s in (content.get("sources") or {}).items():
        status = s.get("status")
        out.append({"name": _pick(SOURCE_NAMES, key, i), "status": status,
                    "status_label": _pick(STATUS_NAMES, status, i),
                    "complete": status == "complete",
                    "reason": (_pick(REASON_NAMES, s.get("reason"), i, "other_reason") if s.get("reason") else ""),
                    "members": [{"name": names(m.get("person_ref")), "state": _pick(MEMBER_STATES, m.get("state"), i,
                                                                                   "other_reason")}
                                for m in s.get("members") or []]})
    out.sort(key=lambda x: x["complete"])  # what is missing first
    return out


def facts(content: dict, names: Names, i: int) -> dict:
    """The facts behind the counts (assessment.details, when the policy grants it)."""
    d = (content.get("assessment") or {}).get("details") or {}
    yes_no = (WORDS["counted"][i], WORDS["not_counted"][i])
    income = d.get("income") or {}
    by_category = income.get("by_category") or {}
    categories = [c for c in INCOME_CATEGORIES if c in by_category] + sorted(set(by_category) - set(INCOME_CATEGORIES))
    months = []
    for m in income.get("months") or []:
        row = [by_category[c].get(m, 0.0) for c in categories]
        months.append({"month": m, "amounts": [money(x) for x in row], "total": money(sum(row))})
    return {
        "present": bool(d),
        "vehicles": [{"member": names(v.get("person_ref")), "type": _pick(VEHICLE_TYPES, v.get("type"), i),
                      "price": money(v.get("purchase_price")), "year": v.get("year") or "",
                      "status": _pick(ITEM_STATUSES, v.get("status"), i),
                      "counted": yes_no[0 if v.get("counted") else 1],
                      "is_counted": bool(v.get("counted"))} for v in d.get("vehicles_vessels") or []],
        "properties": [{"member": names(p.get("person_ref")), "use": _pick(USES, p.get("use"), i),
                        "area": f"{p['area']:.2f}" if isinstance(p.get("area"), (int, float)) else "",
                        "share": f"{p['share'] * 100:.0f}%" if isinstance(p.get("share"), (int, float)) else "",
                        "county": _pick(COUNTIES, p.get("county"), i), "acquired": p.get("acquired") or "",
                        "counted": yes_no[0 if p.get("counted") else 1], "is_counted": bool(p.get("counted"))}
                       for p in d.get("properties") or []],
        "entities": [{"member": names(e.get("person_ref")), "name": e.get("name") or "",
                      "role": _pick(ROLES, e.get("role"), i), "capital": money(e.get("registered_capital")),
                      "status": _pick(ITEM_STATUSES, e.get("status"), i),
                      "counted": yes_no[0 if e.get("counted") else 1],
                      "is_counted": bool(e.get("counted"))} for e in d.get("market_entities") or []],
        "income_categories": [_pick(INCOME_CATEGORIES, c, i) for c in categories],
        "income_months": months if categories else [],
        "financial": [{"member": names(f.get("person_ref")), "kind": _pick(FINANCIAL_KINDS, f.get("kind"), i),
                       "institution": f.get("institution") or "",
                       "product": (PRODUCTS[f["product"]][i] if f.get("product") in PRODUCTS
                                   else f.get("product") or ""),
                       "amount": money(f.get("amount"))} for f in d.get("financial") or []],
    }


def summary(content: dict, i: int) -> dict:
    """The assessment's figures, labelled: the standard, the income by category, the assets' counts."""
    a = content.get("assessment") or {}
    st, inc = a.get("standard") or {}, a.get("income") or {}
    assets, window = a.get("assets") or {}, a.get("window") or {}
    return {
        "standard": ({"county": _pick(COUNTIES, st.get("county"), i), "area": _pick(AREA_TYPES, st.get("area_type"), i),
                      "dibao": money(st.get("dibao_monthly")), "low_income": money(st.get("low_income_line"))}
                     if st else None),
        "window": f"{window['from']} – {window['to']}" if window.get("from") else "",
        "members_counted": a.get("members_counted"),
        "income": ({"per_capita": money(inc.get("monthly_per_capita")), "total": money(inc.get("monthly_total")),
                    "by_category": [(_pick(INCOME_CATEGORIES, c, i), money(v))
                                    for c, v in (inc.get("monthly_by_category") or {}).items() if v]} if inc else None),
        "assets": ({"financial_pc": money(assets.get("financial_per_capita")),
                    "financial": [(_pick(FINANCIAL_KINDS, k, i), money(assets[k])) for k in FINANCIAL_KINDS
                                  if assets.get(k)],
                    "properties": assets.get("residential_properties"),
                    "area_pc": assets.get("residential_area_per_capita"), "cars": assets.get("cars"),
                    "vessels": assets.get("vessels"), "entities": assets.get("market_entities")} if assets else None),
    }


def head(content: dict, case, department: str, purpose: str, i: int) -> dict:
    division = content.get("division") or {}
    applicant = case.applicant if case is not None else None
    return {"case_ref": case.case_ref if case is not None else "",
            "applicant": applicant.name if applicant else "",
            "applicant_id": applicant.id_number_masked if applicant else "",
            "department": department_label(department, i), "department_code": department,
            "purpose": _pick(PURPOSE_NAMES, purpose, i),
            "division": _pick(COUNTIES, division.get("code"), i) if division.get("code") else ""}


def members(content: dict, i: int) -> list[dict]:
    return [{"name": m.get("name") or "", "id": m.get("id_number_masked") or "",
             "relation": _pick(RELATION_NAMES, m.get("relation"), i), "age": m.get("age"),
             "status": _pick(STATUS_NAMES, m.get("status"), i)} for m in content.get("members") or []]


def record_view(content: dict, lang: str, *, case, department: str, purpose: str) -> dict:
    """Everything the record page shows, from the cut content, the department's case (or None) and the language."""
    i = 1 if lang == "en" else 0
    names = Names(content, case, i)
    return {"head": head(content, case, department, purpose, i), "programmes": screening(content, names, i),
            "summary": summary(content, i), "facts": facts(content, names, i), "members": members(content, i),
            "discrepancies": discrepancies(content, names, i), "sources": sources(content, names, i),
            "rules": (content.get("assessment") or {}).get("rules")}


# the record page's own words (hub/web/console/templates/case_record.html)
TEXT.update({
    "rec_applicant": ("申请人", "Applicant"),
    "rec_department": ("经办部门", "Department"),
    "rec_household_ref": ("家庭编号（假名）", "Household reference (pseudonym)"),
    "rec_verdicts": ("救助资格初筛结论", "Screening verdicts"),
    "rec_programme": ("救助项目", "Programme"),
    "rec_verdict": ("结论", "Verdict"),
    "rec_reasons": ("理由（决定性理由在前）", "Reasons (the deciding ones first)"),
    "rec_decisive": ("决定性理由", "decides"),
    "rec_members_concerned": ("涉及成员", "Members concerned"),
    "rec_figures": ("核算结果", "Figures"),
    "rec_standard": ("适用低保标准（元/人·月）", "Dibao standard (yuan per person per month)"),
    "rec_low_income_line": ("低收入线（元/人·月）", "Low-income line (yuan per person per month)"),
    "rec_area_type": ("城乡类别", "Urban or rural"),
    "rec_window": ("收入核算期", "Income window"),
    "rec_members_counted": ("计入家庭人数", "Members counted"),
    "rec_vessels": ("船舶", "Vessels"),
    "rec_facts": ("核对明细", "The facts behind the figures"),
    "rec_vehicles": ("车辆与船舶", "Vehicles and vessels"),
    "rec_member": ("成员", "Member"),
    "rec_type": ("类型", "Type"),
    "rec_price": ("购置价格（元）", "Purchase price (yuan)"),
    "rec_year": ("登记年份", "Registered"),
    "rec_item_status": ("状态", "Status"),
    "rec_counted": ("资产核查", "Asset test"),
    "rec_properties": ("房产", "Properties"),
    "rec_use": ("用途", "Use"),
    "rec_area": ("建筑面积（㎡）", "Floor area (m²)"),
    "rec_share": ("份额", "Share"),
    "rec_county": ("所在区县", "County"),
    "rec_acquired": ("登记日期", "Registered on"),
    "rec_entities": ("市场主体", "Companies"),
    "rec_entity_name": ("名称", "Name"),
    "rec_role": ("身份", "Role"),
    "rec_capital": ("注册资本（元）", "Registered capital (yuan)"),
    "rec_income_months": ("分类月收入（元，计入成员合计）", "Income per category and month (yuan, members counted)"),
    "rec_month": ("月份", "Month"),
    "rec_total": ("合计", "Total"),
    "rec_financial": ("金融资产明细", "Financial assets"),
    "rec_kind": ("类别", "Kind"),
    "rec_institution": ("机构", "Institution"),
    "rec_product": ("产品", "Product"),
    "rec_amount": ("金额（元）", "Amount (yuan)"),
    "rec_sources_cols": ("涉及成员及情况", "Members concerned"),
    "rec_discrepancy": ("不一致事项", "Discrepancy"),
    "rec_sources": ("涉及来源", "Sources"),
    "rec_no_details": ("本部门以该用途查阅时不含明细。", "This department's access for this purpose includes no details."),
})
