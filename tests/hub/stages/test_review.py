"""The assistance review over real records (hub.stages.review.run_review, what_if): households of known archetypes of
the generated population, verified through the pipeline, and grants set by the test, give exactly the expected members
of each list under two standards versions; each run is kept with a ledger entry; a household that entered a list is
announced to its department's webhook; a standards version not yet in force shows its effect from the records held.

The expectations come from the population's truth (agencies.truth: each household's income and assets as generated),
screened by the test's own arithmetic under each version's lines, not from the hub's records."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from core.store import AssistanceGrant, LedgerEvent, Notification, ReviewEntry, ReviewRun, Request, session, utcnow
from hub.rules.standards import rules_at
from hub.services.clients import create_client
from hub.stages.notify import deliver_pending, fan_out
from hub.stages.review import run_review, standards, what_if
from hub.web.app import create_app
from tests.support.households import applied, household_of, population
from tests.support.servers import serve_agencies
from tests.support.webhook import serve_webhook

TODAY = utcnow().date()
LATER = dt.date(2027, 8, 1)  # standards v4 in force: the records held are screened again under it
DEPT = "MZ-210302"  # the sample requests' department
# archetype -> (which of them, the programme the test grants or None)
CAST = {"d-granted": ("dibao", 0, "dibao"), "d-missed": ("dibao", 1, None), "low": ("low_income", 0, None),
        "ordinary": ("ordinary", 0, "low_income"), "car": ("hides_car", 0, "dibao"),
        "flat": ("hides_flat", 0, "dibao"), "company": ("hides_company", 0, None),
        "edge": ("low_income", None, "low_income")}  # the low-income household the higher v4 line makes dibao
PROGRAMMES = ("dibao", "low_income")  # what the population's truth decides (tekun and expenditure need people)


@pytest.fixture(scope="module", autouse=True)
def backend(module_database):
    return module_database


@pytest.fixture(scope="module")
def world(backend):
    """The cast verified and published, the test's grants reported: name -> (household index, household_ref)."""
    agencies = serve_agencies("none")
    next(agencies)
    try:
        cast = {}
        for name, (archetype, skip, grant) in CAST.items():
            k = household_of(archetype, skip) if skip is not None else near_the_line()
            request_id = applied(k)
            with session() as s:
                ref = s.get(Request, request_id).household_ref
                if grant:
                    s.add(AssistanceGrant(id=uuid.uuid4().hex, household_ref=ref, department=DEPT, programme=grant,
                                          request_id=request_id, granted_from=TODAY - dt.timedelta(days=30),
                                          client_id="test"))
            cast[name] = (k, ref)
        yield cast
    finally:
        agencies.close()


@contextlib.contextmanager
def granted(ref: str, programme: str, granted_from: dt.date):
    """A grant the test reports for one test only: the module's other tests see the cast as set."""
    grant_id = uuid.uuid4().hex
    with session() as s:
        s.add(AssistanceGrant(id=grant_id, household_ref=ref, department=DEPT, programme=programme,
                              granted_from=granted_from, client_id="test"))
    try:
        yield
    finally:
        with session() as s:
            s.execute(delete(AssistanceGrant).where(AssistanceGrant.id == grant_id))


def expected_answers(k: int, rules) -> dict[str, bool]:
    """Screens yes for dibao / low-income under ``rules``, by the population's truth."""
    hh = population().households[k]
    t = population()._facts(k).truth
    std = rules.standard(hh.division, hh.area_type)
    passes = (not t.cars and not t.vessels and not t.entities and t.properties <= rules.max_residential_properties
              and t.financial_assets_per_capita <= rules.asset_months * std)
    pc = t.monthly_income_per_capita
    return {"dibao": passes and pc < std, "low_income": passes and std <= pc < rules.low_income_factor * std}


def near_the_line() -> int:
    """A low-income household (by the truth) that would screen dibao under v4."""
    v3, v4 = rules_at(TODAY), standards("anshan-2027-v4")
    pop = population()
    return next(h.index for h in pop.households if expected_answers(h.index, v3)["low_income"]
                and expected_answers(h.index, v4)["dibao"])


def expected_lists(world, rules) -> set[tuple[str, str, str]]:
    out = set()
    for name, (k, ref) in world.items():
        granted = CAST[name][2]
        for p, yes in expected_answers(k, rules).items():
            if yes and granted != p:
                out.add(("missed", ref, p))
            if not yes and granted == p:
                out.add(("over", ref, p))
    return out


def entries_of(run_id: str) -> list[ReviewEntry]:
    with session() as s:
        rows = s.scalars(select(ReviewEntry).where(ReviewEntry.run_id == run_id)).all()
        s.expunge_all()
        return rows


def test_the_lists_are_exactly_the_expected_households_under_the_standards_in_force(world):
    result = run_review(TODAY)
    got = entries_of(result["run_id"])
    mine = {ref for _, ref in world.values()}
    listed = {(e.kind, e.household_ref, e.programme) for e in got
              if e.household_ref in mine and e.programme in PROGRAMMES and e.kind != "review"}
    assert listed == expected_lists(world, rules_at(TODAY))
    by = {(e.kind, e.household_ref, e.programme): e for e in got}
    car = by["over", world["car"][1], "dibao"]
    assert car.reasons == ["OWNS_VEHICLE"] and car.departments == [DEPT]
    assert by["over", world["flat"][1], "dibao"].reasons == ["PROPERTIES_ABOVE_LIMIT"]
    missed = by["missed", world["d-missed"][1], "dibao"]
    assert missed.since_version == 1 and missed.since <= TODAY and missed.departments == [DEPT]
    assert ("missed", world["low"][1], "low_income") in by
    # nobody granted and screening no is on a list; tekun never screens plain yes: only "review"
    assert not any(e.household_ref == world["company"][1] and e.kind != "review" for e in got)
    assert all(e.kind == "review" for e in got if e.programme == "tekun")
    with session() as s:
        run = s.get(ReviewRun, result["run_id"])
        assert run.rules == "anshan-2025-v3" and run.summary["counts"]["over"] >= 3
        kept = [e.payload for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "review.completed"))
                if e.payload["run_id"] == result["run_id"]]  # one entry a run, however often it is asked for
        assert len(kept) == 1 and kept[0]["over"] == result["over"] == run.summary["counts"]["over"]
    text = json.dumps(run.summary) + json.dumps([e.reasons + e.departments for e in got])
    for k, _ in world.values():  # counts, pseudonyms and codes only
        assert all(p.id_number not in text and p.name not in text for p in population().households[k].members)


def test_under_the_next_standards_the_lists_follow_the_higher_line(world):
    v4 = standards("anshan-2027-v4")
    assert rules_at(LATER) is v4
    result = run_review(LATER)
    mine = {ref for _, ref in world.values()}
    listed = {(e.kind, e.household_ref, e.programme) for e in entries_of(result["run_id"])
              if e.household_ref in mine and e.programme in PROGRAMMES and e.kind != "review"}
    assert result["rules"] == "anshan-2027-v4"
    assert listed == expected_lists(world, v4) != expected_lists(world, rules_at(TODAY))
    edge = world["edge"][1]  # granted low-income; under the higher line it screens dibao
    assert {("missed", edge, "dibao"), ("over", edge, "low_income")} <= listed


def test_what_if_counts_who_would_enter_or_leave_from_the_records_held(world):
    v3, v4 = rules_at(TODAY), standards("anshan-2027-v4")
    effect = what_if("anshan-2027-v4", TODAY)
    mine = {ref: k for k, ref in world.values()}
    for p in PROGRAMMES:
        enter = sum(expected_answers(k, v4)[p] and not expected_answers(k, v3)[p] for k in mine.values())
        leave = sum(expected_answers(k, v3)[p] and not expected_answers(k, v4)[p] for k in mine.values())
        counted = effect["programmes"][p]  # the module's store holds the cast's records only
        assert (sum(c.get("enter", 0) for c in counted.values()), sum(c.get("leave", 0) for c in counted.values())) \
            == (enter, leave)
    k, _ = world["edge"]
    county = population().households[k].division
    assert effect["programmes"]["dibao"][county]["enter"] >= 1
    assert effect["programmes"]["low_income"][county]["leave"] >= 1
    assert effect["households"] == len(world)
    assert effect["current"] == "anshan-2025-v3" and effect["proposed"] == "anshan-2027-v4"
    with pytest.raises(LookupError):
        what_if("anshan-2099-v9", TODAY)


def test_a_second_run_over_the_same_records_is_the_same_run_and_a_new_grant_makes_a_new_one(world):
    first = run_review(TODAY)
    again = run_review(TODAY)
    assert again["run_id"] == first["run_id"] and again["existing"]
    k, ref = world["d-missed"]
    with granted(ref, "dibao", TODAY):
        after = run_review(TODAY)
        assert after["run_id"] != first["run_id"] and not after["existing"]
        assert ("missed", ref, "dibao") not in {(e.kind, e.household_ref, e.programme)
                                                for e in entries_of(after["run_id"])}
        assert run_review(TODAY)["run_id"] == after["run_id"]
    # the grant withdrawn, the records read as before the first run, but the last run kept is the one with the grant:
    # a new run follows it (and finds the household missed again) rather than the first run coming back
    back = run_review(TODAY)
    assert back["run_id"] not in (first["run_id"], after["run_id"]) and not back["existing"]
    assert {("missed", ref, "dibao")} <= {(e.kind, e.household_ref, e.programme) for e in entries_of(back["run_id"])
                                          if e.new}


def test_a_household_that_entered_a_list_is_announced_to_its_department(world, backend):
    _, token = create_client("caseworker", "department", DEPT)
    gen = serve_webhook()
    url, received = next(gen)
    try:
        api = TestClient(create_app())
        assert api.post("/v1/subscriptions", json={"url": url},
                        headers={"Authorization": f"Bearer {token}"}).status_code == 201
        fan_out()
        deliver_pending()
        run_review(TODAY)  # what is on the lists now has been announced (or not) by this run already
        fan_out()
        deliver_pending()
        received.clear()
        _, ref = world["ordinary"]
        # the ordinary household, granted low-income by the test, is now reported granted dibao too: over-assisted
        with granted(ref, "dibao", TODAY - dt.timedelta(days=1)):
            result = run_review(TODAY)
        with session() as s:
            notes = s.scalars(select(Notification).where(Notification.kind == "review.flagged",
                                                         Notification.payload["run_id"].as_string()
                                                         == result["run_id"])).all()
            assert [n.household_ref for n in notes] == [ref]  # only what entered a list since the last run
            assert notes[0].payload["changed"] == ["review.over.dibao"]
        assert fan_out() >= 1
        deliver_pending()
        bodies = [json.loads(b) for _, b in received]
        mine = [b for b in bodies if b["household_id"] == ref]
        assert mine and mine[0]["kind"] == "review.flagged" and mine[0]["review_run"] == result["run_id"]
        assert mine[0]["changed"] == ["review.over.dibao"]
    finally:
        gen.close()
