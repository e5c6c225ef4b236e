"""The review as a pure function (hub.stages.review.review) over hand-made views of records and grants: who is missed,
who waits for review, who is over-assisted and since when, and the movement per month and county."""

from __future__ import annotations

import datetime as dt

from hub.stages.review import Grant, Household, Version, review

D = dt.date
AS_OF = D(2026, 6, 30)
TIEDONG, TAIAN = "210302", "210321"  # 铁东区 (urban), 台安县 (rural)


def v(n: int, day: dt.date, dibao: str, low: str = "no", *, recheck: bool = True, changed: bool = False,
      why: tuple[str, ...] = ()) -> Version:
    answers = {"dibao": dibao, "low_income": low, "tekun": "no"}
    reasons = {"dibao": why or (("INCOME_BELOW_STANDARD", "ASSET_TEST_PASSED") if dibao == "yes" else
                                ("INCOME_AT_OR_ABOVE_STANDARD",)),
               "low_income": ("INCOME_OUTSIDE_LOW_INCOME_BAND",), "tekun": ("HAS_SUPPORTER",)}
    return Version(n, day, recheck and n > 1, answers, reasons, changed)


def hh(ref: str, *versions: Version, county: str = TIEDONG, members: int = 2, departments=("MZ-A",)) -> Household:
    return Household(ref, county, members, tuple(versions), tuple(departments))


def run(households, grants, **kw):
    return review(households, grants, AS_OF, rules="anshan-2025-v3", **kw)


def test_the_three_lists_each_with_its_reasons_and_since_when():
    households = [
        hh("h-missed", v(1, D(2025, 3, 1), "no"), v(2, D(2025, 9, 1), "yes"), v(3, D(2026, 3, 1), "yes")),
        hh("h-review", v(1, D(2026, 1, 5), "needs_review", why=("SOURCES_INCOMPLETE",))),
        hh("h-over", v(1, D(2025, 1, 1), "yes"), v(2, D(2026, 2, 1), "no",
                                                   why=("INCOME_BELOW_STANDARD", "OWNS_VEHICLE")),
           departments=("MZ-A", "MZ-B")),
        hh("h-fine", v(1, D(2025, 1, 1), "yes")),  # granted, screens yes: on no list
        hh("h-none", v(1, D(2025, 1, 1), "no")),  # not granted, screens no: on no list
    ]
    grants = [Grant("h-over", "MZ-B", "dibao", D(2025, 2, 1)), Grant("h-fine", "MZ-A", "dibao", D(2025, 2, 1)),
              Grant("h-missed", "MZ-A", "dibao", D(2024, 1, 1), D(2025, 6, 30))]  # ended: not active
    out = run(households, grants)
    got = {(e.kind, e.household_ref, e.programme): e for e in out.entries}
    assert set(got) == {("missed", "h-missed", "dibao"), ("review", "h-review", "dibao"), ("over", "h-over", "dibao")}
    missed = got["missed", "h-missed", "dibao"]
    assert (missed.since, missed.since_version, missed.record_version) == (D(2025, 9, 1), 2, 3)
    assert missed.departments == ("MZ-A",)
    over = got["over", "h-over", "dibao"]
    assert over.reasons == ("OWNS_VEHICLE",)  # the passing income test is not a reason for "no"
    assert over.departments == ("MZ-B",) and (over.since, over.since_version) == (D(2026, 2, 1), 2)
    assert out.counts() == {"missed": 1, "review": 1, "over": 1}
    assert out.funnel["dibao"]["yes"] == {"granted": 1, "not_granted": 1}
    assert out.funnel["dibao"]["no"] == {"granted": 1, "not_granted": 1}


def test_a_grant_that_starts_after_the_day_or_for_another_programme_is_not_active():
    households = [hh("h1", v(1, D(2026, 1, 1), "yes"))]
    later = run(households, [Grant("h1", "MZ-A", "dibao", D(2026, 7, 1))])
    other = run(households, [Grant("h1", "MZ-A", "low_income", D(2026, 1, 1))])
    assert [e.kind for e in later.entries] == ["missed"]
    # dibao: screens yes, not granted; low-income: granted, screens no
    assert [(e.kind, e.programme) for e in other.entries] == [("missed", "dibao"), ("over", "low_income")]
    until_today = run(households, [Grant("h1", "MZ-A", "dibao", D(2026, 1, 1), AS_OF)])
    assert until_today.entries == []  # granted until the day reviewed, inclusive


def test_movement_per_month_and_county():
    households = [
        hh("h1", v(1, D(2026, 1, 10), "yes"), v(2, D(2026, 4, 10), "no", changed=True), county=TAIAN, members=3),
        hh("h2", v(1, D(2026, 2, 1), "no", "yes"), v(2, D(2026, 4, 20), "no", "yes")),
    ]
    grants = [Grant("h1", "MZ-A", "dibao", D(2026, 1, 15), D(2026, 4, 30)),
              Grant("h2", "MZ-A", "low_income", D(2026, 2, 3)),
              Grant("h1", "MZ-A", "low_income", D(2026, 5, 2))]
    out = run(households, grants, residents=1000)
    rows = {(r["month"], r["county"]): r for r in out.movement}
    assert rows["2026-01", TAIAN]["grants_started"] == 1 and rows["2026-01", TAIAN]["moved:none->dibao"] == 1
    assert rows["2026-02", TIEDONG]["moved:none->low_income"] == 1
    assert rows["2026-04", TAIAN] == {"month": "2026-04", "county": TAIAN, "answer_changed": 1, "grants_ended": 1,
                                      "material_changes": 1, "rechecked": 1}  # granted until April's last day
    assert rows["2026-04", TIEDONG]["rechecked"] == 1 and rows["2026-04", TIEDONG]["answer_changed"] == 0
    assert rows["2026-05", TAIAN]["moved:dibao->low_income"] == 1
    # both households receive on the day: 3 + 2 persons of 1,000 residents
    assert out.coverage["recipients"] == 5 and out.coverage["per_1000"] == 5.0
    assert out.coverage["rechecks"] == 2 and out.coverage["rechecks_changed_share"] == 0.5
    assert out.entries == [e for e in out.entries if e.kind == "over"]  # h1: low-income granted, screens no
    assert out.summary()["per_county"] == {TAIAN: {"over": 1}}


def test_movement_keeps_to_the_months_asked_and_coverage_needs_residents():
    households = [hh("h1", v(1, D(2020, 1, 1), "yes"), v(2, D(2026, 6, 1), "yes"))]
    grants = [Grant("h1", "MZ-A", "dibao", D(2020, 2, 1))]
    out = run(households, grants, months=3)
    assert {r["month"] for r in out.movement} == {"2026-06"}  # the 2020 grant started before the window
    assert out.coverage["per_1000"] is None and out.coverage["recipients"] == 2
