"""精准评估 in the console (/console/review): staff and auditors see the city's charts (SVG drawn on the server, each
with its numbers in a table) and the lists; a department sees only its own households' entries; an auditor opens an
entry's ledger trail; the lists download as CSV and Excel; who may not look gets 403. Each read is a ledger entry."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.store import AssistanceGrant, LedgerEvent, Request, engine, session, upgrade, utcnow
from hub.services.clients import create_client
from hub.stages.review import run_review
from hub.web.app import create_app
from hub.stages.intake import create_request
from hub.stages.pipeline import run_inline
from tests.support.households import ALL_SOURCES, household_of, sample
from tests.support.servers import serve_agencies

MINE, OTHER = "MZ-210302", "MZ-210303"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A store of the module's own: a dibao household of each department, both granted nothing (missed), and a
    car-hiding household granted dibao by MINE (over); the review run."""
    url = f"sqlite:///{tmp_path_factory.mktemp('review-console') / 'store.db'}"
    upgrade(url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUB_DATABASE_URL", url)
        agencies = serve_agencies("none")
        next(agencies)
        try:
            refs = {}
            for name, (archetype, skip, dept) in {"mine": ("dibao", 0, MINE), "other": ("dibao", 1, OTHER),
                                                  "car": ("hides_car", 0, MINE)}.items():
                request_id = create_request(sample(household_of(archetype, skip), department=dept,
                                                   sources=list(ALL_SOURCES)))
                assert run_inline(request_id).status == "published"
                with session() as s:
                    refs[name] = s.get(Request, request_id).household_ref
            with session() as s:
                s.add(AssistanceGrant(id=uuid.uuid4().hex, household_ref=refs["car"], department=MINE,
                                      programme="dibao", granted_from=utcnow().date() - dt.timedelta(days=10),
                                      client_id="test"))
            run = run_review(utcnow().date(), residents=1000)
            tokens = {role: create_client(f"review {role}", role, dept)[1] for role, dept in
                      (("staff", None), ("auditor", None), ("admin", None))}
            tokens["mine"] = create_client("review caseworker", "department", MINE)[1]
            tokens["other"] = create_client("review other caseworker", "department", OTHER)[1]
            yield {"refs": refs, "run": run, "tokens": tokens, "api": TestClient(create_app())}
        finally:
            agencies.close()
            engine(url).dispose()


def signed_in(world, who: str) -> TestClient:
    api = world["api"]
    api.cookies.clear()
    resp = api.post("/console/login", data={"token": world["tokens"][who]}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return api


def households_on(html: str) -> set[str]:
    return set(re.findall(r'data-household="(hh_[0-9a-f]{32})"', html))


def test_staff_see_the_charts_with_their_numbers_and_the_lists(world):
    api = signed_in(world, "staff")
    page = api.get("/console/review")
    assert page.status_code == 200
    html = page.text
    assert html.count("<svg") == 3 and html.count('class="figures"') == 3  # each chart with its table
    assert "<script" not in html and "http" not in re.sub(r'xmlns="http://www.w3.org/2000/svg"', "", html)
    assert households_on(html) == {world["refs"]["mine"], world["refs"]["other"]}  # missed: both departments'
    over = api.get("/console/review?kind=over").text
    assert households_on(over) == {world["refs"]["car"]} and "拥有机动车" in over
    en = api.get("/console/review?kind=over&lang=en").text
    assert "owns a car or truck" in en and "Assisted, no longer qualifies" in en and "<svg" in en
    assert 'id="coverage"' in html


def test_a_department_sees_only_its_own_households_and_no_city_figures(world):
    api = signed_in(world, "other")
    html = api.get("/console/review").text
    assert households_on(html) == {world["refs"]["other"]} and "<svg" not in html
    assert households_on(api.get("/console/review?kind=over").text) == set()  # the car household is MINE's
    rows = list(csv.reader(io.StringIO(api.get("/console/review.csv?kind=missed").content.decode("utf-8-sig"))))
    assert len(rows) == 2 and world["refs"]["other"] in rows[1]
    mine = signed_in(world, "mine")
    assert households_on(mine.get("/console/review?kind=over").text) == {world["refs"]["car"]}


def test_the_auditor_opens_an_entrys_ledger_trail(world):
    api = signed_in(world, "auditor")
    html = api.get("/console/review?kind=over").text
    ref = world["refs"]["car"]
    assert f'href="/console/audit/households/{ref}"' in html
    trail = api.get(f"/console/audit/households/{ref}")
    assert trail.status_code == 200 and trail.text.count("<tr") > 3  # its requests, fetches, publication, reads
    assert api.get("/console/audit/households/not-a-ref").status_code in (404, 422)


@pytest.mark.parametrize("who, status", [("admin", 403), (None, 303)])
def test_who_may_not_look_does_not_see(world, who, status):
    api = signed_in(world, who) if who else world["api"]
    if who is None:
        api.cookies.clear()
    assert api.get("/console/review", follow_redirects=False).status_code == status
    assert api.get("/console/review.csv", follow_redirects=False).status_code == status


def test_every_read_of_a_list_is_a_ledger_entry_and_the_excel_download_opens(world):
    api = signed_in(world, "staff")
    with session() as s:
        before = s.scalar(select(func.count()).select_from(LedgerEvent).where(LedgerEvent.kind == "review.read"))
    xlsx = api.get("/console/review.xlsx?kind=over")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    with session() as s:
        after = s.scalar(select(func.count()).select_from(LedgerEvent).where(LedgerEvent.kind == "review.read"))
    assert after == before + 1


# -- in Chromium, at a desktop's and a phone's size, in both languages ----------------------------------------------
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_page_in_a_browser_fits_a_phone_and_a_desktop(world, live_server, driver, shot, lang):
    from selenium.webdriver.common.by import By

    from tests.support.console import DESKTOP, PHONE, follow

    driver.get(live_server.url + "/console/login")
    driver.delete_all_cookies()
    driver.get(live_server.url + f"/console/login?lang={lang}")
    driver.find_element(By.ID, "token").send_keys(world["tokens"]["staff"])
    follow(driver, driver.find_element(By.ID, "signin"))  # signed in before the review page is asked for
    for name, (w, h) in (("desktop", DESKTOP), ("phone", PHONE)):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": w, "height": h, "deviceScaleFactor": 1 if name == "desktop" else 2, "mobile": name == "phone"})
        try:
            for kind in ("missed", "over"):
                driver.get(f"{live_server.url}/console/review?kind={kind}&lang={lang}")
                assert driver.find_element(By.TAG_NAME, "h1").text == ("精准评估" if lang == "zh" else
                                                                       "Assistance review")
                charts = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
                assert len(charts) == 3 and all(c.size["width"] > 100 for c in charts)  # drawn, not blank
                assert driver.find_elements(By.CSS_SELECTOR, "#entries article.entry")
                sizes = driver.execute_script("""
                    const out = [];
                    for (const el of document.querySelectorAll('body *')) {
                      const r = el.getBoundingClientRect();
                      if (r.right > window.innerWidth + 1 && !el.closest('.scroll')) out.push(el.tagName + ' ' + r.right + ' in ' + (el.closest('section') || {}).id);
                    }
                    return {inner: window.innerWidth, scroll: document.documentElement.scrollWidth, out: out.slice(0, 5)};""")
                assert sizes["scroll"] <= sizes["inner"] + 1 and not sizes["out"], (name, kind, sizes)
                shot(f"review-{lang}-{name}-{kind}")
        finally:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
