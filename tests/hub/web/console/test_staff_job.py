"""The staff's job in a real browser, from the sign-in page: see that monitoring is stale or unwatched, find the
failing source, follow it to its quarantined rows, and follow a row to the Data Docs page of the validation that
quarantined it; at the desktop's and a phone's size, in Chinese and in English. Each step leaves a screenshot.

The failing source is a tax batch with one row whose ID number has a wrong check character: the tax suite checks
it with the hub's own expectation (schemas.expectations), so its Data Docs page needs that expectation known
where the page is rendered.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from urllib.parse import urlparse

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from core.crypto import keyring
from core.store import SourceCheck, SourceRow, aad_source_row, session, utcnow
from hub.services.clients import create_client
from hub.stages.intake import create_request
from hub.stages.pipeline import fetch_source, validate_batch
from schemas.contracts import SPECS
from tests.support.console import DESKTOP, PHONE, WAIT, follow
from tests.support.households import sample

RUN = "staff-job-test"
REASON = {"zh": "身份证号校验位错误", "en": "ID number fails its GB 11643 check character"}
BANNER = {"zh": ("未配置调度器", "没有探测记录"), "en": ("No scheduler is configured", "has been probed")}


@pytest.fixture(scope="module")
def no_worker():
    """The app without its own worker (hub.services.worker), which would verify the request before its row is
    spoilt: the test validates the batch itself, as the validate stage would."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUB_INLINE_WORKER", "0")
        yield


@pytest.fixture(scope="module")
def failing(no_worker, live_server):
    """A tax batch with a wrong ID check character in its second row, validated: one quarantined row (at least)."""
    request_id = create_request(sample(46, sources=["household", "tax"]))
    batch = fetch_source(request_id, "tax")
    keys = keyring()
    with session() as s:
        row = s.scalars(select(SourceRow).where(SourceRow.batch_id == batch, SourceRow.row_no == 1)).one()
        data = json.loads(keys.decrypt(row.data_enc, aad=aad_source_row(batch, 1)))
        data["id_number"] = data["id_number"][:17] + ("0" if data["id_number"][17] != "0" else "1")
        row.data_enc = keys.encrypt(json.dumps(data, ensure_ascii=False), aad=aad_source_row(batch, 1))
    result = validate_batch(batch, run_id=RUN)
    assert not result.get("already") and result["status"] != "complete", result
    return {"batch": batch, "bad_id": data["id_number"], "base": live_server.url}


@pytest.fixture(scope="module")
def token():
    return create_client("staff job", "staff")[1]


def probes(at: dt.datetime) -> None:
    """Every agency source's latest probe at ``at`` (what the source_health DAG records)."""
    with session() as s:
        s.add_all(SourceCheck(source=src, ok=True, latency_ms=5.0, checked_at=at) for src in SPECS)


def wait(driver) -> WebDriverWait:
    return WebDriverWait(driver, WAIT)


def path_of(driver) -> str:
    return urlparse(driver.current_url).path


def sign_in(driver, base: str, token: str, lang: str) -> None:
    """From the sign-in page, as a person would: the language switch, the token, the button."""
    driver.get(base + "/console/login")
    driver.delete_all_cookies()
    driver.get(base + "/console/login")
    if lang == "en":
        follow(driver, driver.find_element(By.ID, "lang-switch"))
    wait(driver).until(EC.visibility_of_element_located((By.ID, "token"))).send_keys(token)
    follow(driver, driver.find_element(By.ID, "signin"))
    assert path_of(driver) == "/console/", driver.page_source[:500]


def fits(driver) -> None:
    """The console page is no wider than the window (its wide tables scroll inside their own box)."""
    m = driver.execute_script("return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth};")
    assert m["scroll"] <= m["inner"] + 1, m


def banner(driver) -> tuple[str, str]:
    el = driver.find_element(By.ID, "monitoring")
    assert el.is_displayed()
    return el.get_attribute("data-level"), el.text


SIZES = {"desktop": DESKTOP, "phone": PHONE}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_staff_follow_a_failing_source_to_its_quarantined_rows_and_data_docs(failing, token, driver, shot, size,
                                                                             lang, monkeypatch):
    monkeypatch.delenv("HUB_AIRFLOW_URL", raising=False)  # no scheduler, as on one machine without Airflow
    probes(utcnow() - dt.timedelta(hours=3))  # the last probes long ago: nothing is watching
    driver.set_window_size(*SIZES[size])
    base, name = failing["base"], f"staff-job-{size}-{lang}"
    try:
        sign_in(driver, base, token, lang)
        # home: the banner says in words that nothing is watched, and what to do
        level, words = banner(driver)
        assert level == "red", words
        assert all(w in words for w in BANNER[lang]), words
        assert "HUB_AIRFLOW_URL" in words
        fits(driver)
        shot(f"{name}-01-home")

        # the sources page: the tax source failed validation, its quarantined rows a link away
        follow(driver, driver.find_element(By.CSS_SELECTOR, 'main a[href="/console/sources"]'))
        assert banner(driver)[0] == "red"
        row = driver.find_element(By.CSS_SELECTOR, 'tr[data-source="tax"]')
        assert "(" in row.find_element(By.CSS_SELECTOR, "td.probed").text  # marked out of date
        link = row.find_element(By.CSS_SELECTOR, "td.quarantined a")
        assert int(link.text) >= 1
        fits(driver)
        shot(f"{name}-02-sources")
        follow(driver, link)

        # the quarantine, filtered to tax: the row, its reason in this language only, its Data Docs link
        assert path_of(driver) == "/console/quarantine" and "source=tax" in driver.current_url
        mine = driver.find_elements(By.CSS_SELECTOR, f'tr[data-batch="{failing["batch"]}"]')
        assert mine, driver.find_element(By.ID, "rows").text[:500]
        checked = next(r for r in mine if r.get_attribute("data-check") == "id_check_digit")
        reason = checked.find_element(By.CSS_SELECTOR, "td.reason").text
        other = "en" if lang == "zh" else "zh"
        assert reason == REASON[lang] and REASON[other] not in driver.find_element(By.ID, "rows").text
        assert failing["bad_id"] not in driver.page_source
        fits(driver)
        docs_link = checked.find_element(By.CSS_SELECTOR, 'a[href^="/console/data-docs/"]')
        right = driver.execute_script("return arguments[0].getBoundingClientRect().right;", docs_link)
        assert right <= driver.execute_script("return window.innerWidth;")  # in reach without scrolling sideways
        shot(f"{name}-03-quarantine")

        # its CSV: the reason in this language only
        cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
        resp = httpx.get(f"{base}/console/quarantine.csv", params={"source": "tax", "lang": lang}, cookies=cookies)
        assert resp.status_code == 200
        table = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
        reasons = [r[3] for r in table[1:] if r[2] == "id_check_digit"]
        assert REASON[lang] in reasons and not any(" / " in r or REASON[other] in r for r in reasons), reasons

        # the Data Docs page of the validation run: GX's page, with the hub's own check in words
        follow(driver, docs_link)
        wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".hub-banner")))
        html = driver.page_source
        assert "tax_suite" in html and RUN in html
        assert "GB 11643 check character" in html  # schemas.expectations' own sentence
        assert failing["bad_id"] not in html
        shot(f"{name}-04-data-docs")

        # fresh probes: the banner stays (no scheduler), now amber, and names no late source
        probes(utcnow())
        driver.get(base + "/console/alerts")
        level, words = banner(driver)
        assert level == "amber" and BANNER[lang][0] in words and BANNER[lang][1] not in words, words
        fits(driver)
        shot(f"{name}-05-alerts-no-scheduler")

        # a scheduler configured but not answering: red, and what to check
        monkeypatch.setenv("HUB_AIRFLOW_URL", "http://127.0.0.1:9/")  # nothing listens there
        driver.get(base + "/console/alerts")
        level, words = banner(driver)
        assert level == "red" and "HUB_AIRFLOW_URL" in words and "Airflow" in words, words
        shot(f"{name}-06-alerts-scheduler-unreachable")
    finally:
        driver.set_window_size(*DESKTOP)
