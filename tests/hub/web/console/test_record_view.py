"""The record page's view-model (hub.web.console.record) as pure functions: records made by hub.rules.unify from
hand-built households, cut and re-keyed as a department reads them, turned into what the page shows."""

from __future__ import annotations

import datetime as dt
import re

from hub.rules.policy import cut, rule_for, scope_persons
from hub.services.cases import CaseHead, CaseMember
from hub.web.console.pages import department_label
from hub.web.console.record import record_view
from tests.hub.rules.test_unify import keyed, poor_couple

DEPARTMENT = "MZ-210302"
LATIN = re.compile(r"[A-Za-z]{2,}")  # an English word or a code, in text meant to be Chinese
CODE = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")  # NO_MEMBER_AUTHORIZED, OWNS_VEHICLE, ...


def scoped(ref: str) -> str:
    return "d_" + ref[2:]


def read_as(content: dict, department: str = DEPARTMENT, purpose: str = "dibao") -> dict:
    """The content as the department reads it: cut by its rule, persons re-keyed."""
    return scope_persons(cut(content, rule_for(department, purpose)), scoped)


def case_of(hh, head: str) -> CaseHead:
    members = {scoped(keyed(idn)): CaseMember(name=name, id_number_masked=idn[:4] + "*" * 10 + idn[14:],
                                              relation="head" if idn == head else "spouse")
               for idn, name in hh.people}
    return CaseHead(request_id="r" * 32, case_ref="MZ-2026-0001", department=DEPARTMENT, purpose="dibao",
                    created_at=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc),
                    applicant=members[scoped(keyed(head))], members=members)


def with_car():
    hh, head, spouse = poor_couple()
    hh.add("vehicles_vessels", spouse, kind="vehicle", plate="辽C2", type="car", purchase_price=86000.0,
           registered="2021-06-01", status="normal", disability_adapted=False)
    hh.add("real_estate", head, cert_no="辽(2020)鞍山市不动产权第1号", use="residential", area=62.5, share=0.5,
           location_code="210304", address="x", acquired="2015-01-01", mortgaged=False)
    hh.add("market_entity", head, uscc="92210300MA0000000X", name="鞍山某某小吃店", role="operator",
           registered_capital=30000.0, share=1.0, status="active", established="2018-01-01")
    return hh, head, spouse


def view(content: dict, lang: str = "zh", case=None, purpose: str = "dibao", department: str = DEPARTMENT) -> dict:
    return record_view(content, lang, case=case, department=department, purpose=purpose)


def texts(v: dict) -> list[str]:
    """Every string the page shows from the view-model (head, verdicts, reasons, facts, sources)."""
    out = []

    def walk(x):
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, dict):
            for k, y in x.items():
                if k not in ("code", "programme", "answer", "badge", "outcome", "status", "department_code",
                             "applicant_id", "case_ref", "institution", "name", "rules"):
                    walk(y)
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
    walk(v)
    return out


def test_the_deciding_reason_comes_first_and_the_passing_income_test_shows_as_passing():
    hh, head, spouse = with_car()
    v = view(read_as(hh.unify()), case=case_of(hh, head))
    dibao = next(p for p in v["programmes"] if p["programme"] == "dibao")
    assert dibao["answer_label"] == "不符合" and dibao["badge"] == "no"
    first, *rest = dibao["reasons"]
    assert first["code"] == "OWNS_VEHICLE" and first["decisive"] and first["outcome_label"] == "未通过"
    assert first["label"] == "拥有机动车 1 辆（非残疾人功能性补偿代步）" and first["members"] == ["成员1"]
    income = next(r for r in rest if r["code"] == "INCOME_BELOW_STANDARD")
    assert not income["decisive"] and income["outcome"] == "pass" and income["outcome_label"] == "通过"
    assert income["label"] == "人均月收入 450.00 元，低于低保标准 800.00 元"


def test_the_facts_behind_the_counts_name_the_member_the_car_the_flat_and_the_company():
    hh, head, spouse = with_car()
    f = view(read_as(hh.unify()), case=case_of(hh, head))["facts"]
    assert f["vehicles"] == [{"member": "成员1", "type": "小型汽车", "price": "86,000.00", "year": 2021, "status": "正常",
                              "counted": "计入", "is_counted": True}]
    assert f["properties"][0] == {"member": "成员0", "use": "住宅", "area": "62.50", "share": "50%",
                                        "county": "立山区", "acquired": "2015-01-01", "counted": "计入",
                                        "is_counted": True}
    assert f["entities"][0]["name"] == "鞍山某某小吃店" and f["entities"][0]["role"] == "经营者"
    assert f["entities"][0]["counted"] == "不计入"  # operating a stall is allowed
    assert f["income_categories"] == ["劳务报酬"] and len(f["income_months"]) == 12
    assert f["income_months"][0]["amounts"] == ["900.00"] and f["income_months"][0]["total"] == "900.00"
    assert f["financial"] == [{"member": "成员0", "kind": "银行存款", "institution": "工商银行", "product": "活期",
                               "amount": "3,000.00"}]


def test_incomplete_sources_and_discrepancies_name_the_member_in_the_users_words():
    hh, head, spouse = poor_couple()
    content = hh.unify({"bank": "incomplete"})
    content["discrepancies"].append({"kind": "name_differs", "person_ref": keyed(spouse), "sources": [
        "application", "household"], "code": "NAME_DIFFERS", "text": "申请填写的姓名与户籍登记不一致 / the name differs"})
    content["sources"] = {"household": {"status": "complete", "reason": None},
                          "bank": {"status": "incomplete", "reason": "MEMBERS_NOT_AUTHORIZED",
                                   "members": [{"person_ref": keyed(spouse), "state": "refused"}]},
                          "securities": {"status": "refused", "reason": "NO_MEMBER_AUTHORIZED"}}
    for lang in ("zh", "en"):
        v = view(read_as(content), lang, case=case_of(hh, head))
        bank = next(s for s in v["sources"] if s["status"] == "incomplete")
        refused = next(s for s in v["sources"] if s["status"] == "refused")
        assert bank["members"] == [{"name": "成员1", "state": "未授权" if lang == "zh" else "not authorized"}]
        assert bank["name"] == ("银行" if lang == "zh" else "banks")
        assert refused["reason"] == ("没有成员授权查询该来源" if lang == "zh" else "no member authorized this source")
        d = v["discrepancies"][0]
        assert d["member"] == "成员1" and d["label"] == ("申请填写的姓名与户籍登记不一致" if lang == "zh" else
                                                           "The name on the application differs from household "
                                                           "registration")
        dibao = next(p for p in v["programmes"] if p["programme"] == "dibao")
        assert dibao["badge"] == "review" and dibao["reasons"][0]["code"] == "SOURCES_INCOMPLETE"
        assert dibao["reasons"][0]["label"] == ("以下数据来源不完整：银行" if lang == "zh" else "Incomplete sources: banks")
        assert all(not CODE.search(t) for t in texts(v)), [t for t in texts(v) if CODE.search(t)]
        if lang == "zh":  # no English key or word in the Chinese page
            assert all(not LATIN.search(t) for t in texts(v)), [t for t in texts(v) if LATIN.search(t)]


def test_the_head_names_the_case_the_applicant_masked_and_the_department():
    hh, head, spouse = poor_couple()
    case = case_of(hh, head)
    h = view(read_as(hh.unify()), case=case)["head"]
    assert h["case_ref"] == "MZ-2026-0001" and h["applicant"] == "成员0"
    assert h["applicant_id"] == head[:4] + "**********" + head[14:] and head not in str(h)
    assert h["department"] == "鞍山市铁东区民政局" and h["purpose"] == "最低生活保障"
    assert view(read_as(hh.unify()), "en", case=case)["head"]["department"] == \
        "Civil Affairs Bureau, Tiedong District, Anshan"
    assert department_label("XX-1", 0) == "XX-1"


def test_answers_only_and_details_withheld_by_the_policy():
    hh, head, _ = with_car()
    content = hh.unify()
    answers = view(read_as(content, "YB-210302", "medical"), purpose="medical", department="YB-210302")
    assert [(p["programme"], p["reasons"]) for p in answers["programmes"]] == [
        ("dibao", []), ("low_income", []), ("tekun", [])]
    special = read_as(content, DEPARTMENT, "medical")  # civil affairs' special assistance: no details
    assert "details" not in special["assessment"] and "screening" in special["assessment"]
    assert not view(special, purpose="medical")["facts"]["present"]


def test_a_record_published_before_reasons_carried_their_outcome_still_reads_right():
    hh, head, _ = with_car()
    content = hh.unify()
    for r in content["assessment"]["screening"]["dibao"]["reasons"]:
        r.pop("outcome"), r.pop("decisive"), r.pop("persons", None)
    dibao = next(p for p in view(read_as(content))["programmes"] if p["programme"] == "dibao")
    assert dibao["reasons"][0]["code"] == "OWNS_VEHICLE" and dibao["reasons"][0]["decisive"]
    assert next(r for r in dibao["reasons"] if r["code"] == "INCOME_BELOW_STANDARD")["outcome_label"] == "通过"
