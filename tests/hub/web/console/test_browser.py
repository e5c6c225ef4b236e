"""The three consoles in a real browser: headless Chromium, driven by Selenium with clicks and typing, against the
hub's app served by uvicorn (tests/hub/web/console/conftest.py) and the simulated agencies.

A caseworker signs in, starts a request from the head's ID number of a generated household (一证通办), attaches
the members' signed forms, submits, and, once the app's own worker has verified the request (no scheduler), reads the
record; the record and the requests list must fit a phone's width. An auditor checks the ledger's integrity, finds
the head's timeline by ID number and downloads it as CSV, and sees an unusual read. Staff open the sources,
quarantine and validation pages and switch to English. Each step leaves a screenshot in the artifacts folder.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from urllib.parse import urlparse

import httpx
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from agencies.population import household_in_population
from hub.services.clients import create_client
from core.crypto import keyring
from core.store import session
from tests.support.console import PHONE, WAIT, artifacts_dir, download, follow

K = 37  # the generated household: head, spouse, a minor daughter (guardian signs), a son who moved out
PURPOSE, CASE_REF = "dibao", "MZ-2026-0737"
DEPARTMENT = "MZ-210312"


@pytest.fixture(scope="module")
def household():
    return household_in_population(7, 50, K)


@pytest.fixture(scope="module")
def tokens():
    return {"caseworker": create_client("browser caseworker", "department", DEPARTMENT)[1],
            "other": create_client("browser medical caseworker", "department", "YB-210312")[1],
            "auditor": create_client("browser auditor", "auditor")[1],
            "staff": create_client("browser staff", "staff")[1]}


# -- helpers ----------------------------------------------------------------------------------
def wait(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout)


def path_of(driver) -> str:
    return urlparse(driver.current_url).path


def nav(driver, href: str) -> None:
    """Follow the link of the header's navigation to `href`."""
    follow(driver, driver.find_element(By.CSS_SELECTOR, f'header a[href="{href}"]'))


def sign_in(driver, base: str, token: str) -> None:
    driver.get(base + "/console/login")
    driver.delete_all_cookies()  # a fresh start: no session, no language cookie
    driver.get(base + "/console/login")
    wait(driver).until(EC.visibility_of_element_located((By.ID, "token"))).send_keys(token)
    follow(driver, driver.find_element(By.ID, "signin"))
    assert path_of(driver) == "/console/", driver.page_source[:500]


def h1(driver) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text


def horizontal_overflow(driver, width: int) -> dict:
    """The page's width against the viewport's (a phone zooms out a page wider than itself: innerWidth grows), and
    the elements that stick out beyond `width` outside a horizontally scrolling box."""
    return driver.execute_script("""
        const width = arguments[0], out = [];
        for (const el of document.querySelectorAll('body *')) {
          const r = el.getBoundingClientRect();
          if (r.right > width + 1 && !el.closest('.scroll')) out.push(el.tagName + (el.id ? '#' + el.id : '')
              + (el.className ? '.' + String(el.className).replace(/ /g, '.') : '') + ' right=' + Math.round(r.right));
        }
        return {scroll: document.documentElement.scrollWidth, body: document.body.scrollWidth,
                inner: window.innerWidth, offenders: out.slice(0, 8)};""", width)


def assert_fits(driver, what: str) -> None:
    m = horizontal_overflow(driver, PHONE[0])
    assert m["inner"] == PHONE[0] and m["scroll"] <= m["inner"] + 1 and m["body"] <= PHONE[0] + 1, (what, m)


# -- the caseworker ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def published(driver, live_server, shot, tokens, household, tmp_path_factory):
    """The caseworker's flow from sign-in to the record page, in the browser; the facts it saw along the way."""
    base = live_server.url
    forms = tmp_path_factory.mktemp("signed-forms")

    def form_file(name: str) -> str:
        path = forms / f"{name}.pdf"
        # a PDF as the hub takes the applicant's (1 KiB to 5 MiB, ending in %%EOF)
        path.write_bytes(b"%PDF-1.4\n% scan of a form signed for " + name.encode() + b"\n" + b"0" * 2048
                         + b"\n%%EOF\n")
        return str(path)

    head = next(m for m in household.members if m.relation == "head")
    facts: dict = {"base": base, "head": head}

    driver.get(base + "/console/login")
    wait(driver).until(EC.visibility_of_element_located((By.ID, "signin")))
    shot("01-caseworker-login")
    sign_in(driver, base, tokens["caseworker"])
    shot("02-caseworker-home")

    nav(driver, "/console/requests/new")
    assert path_of(driver) == "/console/requests/new"
    Select(driver.find_element(By.ID, "purpose")).select_by_value(PURPOSE)
    driver.find_element(By.ID, "case_ref").send_keys(CASE_REF)
    driver.find_element(By.ID, "id_number").send_keys(head.id_number)
    driver.find_element(By.ID, "applicant_form").send_keys(form_file("applicant"))
    shot("03-caseworker-new-request")
    follow(driver, driver.find_element(By.ID, "lookup"))

    # the members page: the household as registration knows it
    table = wait(driver).until(EC.presence_of_element_located((By.ID, "members")))
    facts["members"] = {}  # ID number -> what the row shows and asks for
    for k, row in enumerate(table.find_elements(By.CSS_SELECTOR, "tbody tr")):
        cells = row.find_elements(By.TAG_NAME, "td")
        inputs = row.find_elements(By.CSS_SELECTOR, "input[type=file], select")
        facts["members"][cells[2].text.strip()] = {
            "name": cells[1].text.strip(),
            "included": row.find_element(By.CSS_SELECTOR, "input[type=checkbox]").is_selected(),
            "asks": sorted(i.get_attribute("name").removeprefix(f"m{k}_") for i in inputs)}
    uploads = driver.find_elements(By.CSS_SELECTOR, "#request-form input[type=file]")
    for upload in uploads:  # each adult's signed form, and the optional financial consent form
        upload.send_keys(form_file(upload.get_attribute("name")))
    facts["sources_checked"] = len(driver.find_elements(By.CSS_SELECTOR, "input[name=sources]:checked"))
    shot("04-caseworker-members")
    follow(driver, driver.find_element(By.ID, "submit-request"))

    # the request page: received; the app's own worker verifies it (no Airflow here)
    match = re.fullmatch(r"/console/requests/([0-9a-f]{32})", path_of(driver))
    assert match, (driver.current_url, driver.find_element(By.TAG_NAME, "main").text[:500])
    facts["request_id"] = match.group(1)
    facts["status_before"] = driver.find_element(By.ID, "request-status").get_attribute("data-status")
    facts["record_link_before"] = bool(driver.find_elements(By.ID, "read-record"))
    shot("05-caseworker-request-received")

    # the app's own worker runs it (no scheduler here); the page reloads itself until the record is published
    link = WebDriverWait(driver, 120, ignored_exceptions=(WebDriverException,)).until(
        EC.element_to_be_clickable((By.ID, "read-record")))
    facts["status_after"] = driver.find_element(By.ID, "request-status").get_attribute("data-status")
    facts["source_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#source-status tbody tr"))
    shot("06-caseworker-request-published")
    follow(driver, link)

    wait(driver).until(EC.presence_of_element_located((By.ID, "screening")))
    facts["record_url"] = driver.current_url
    facts["record_h1"] = h1(driver)
    facts["screening_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#screening tbody tr"))
    facts["record_labels"] = [dt_.text for dt_ in driver.find_elements(By.CSS_SELECTOR, "#record-identity dt")]
    facts["record_members"] = [r.find_element(By.TAG_NAME, "td").text.strip()
                               for r in driver.find_elements(By.CSS_SELECTOR, "#record-members tbody tr")]
    facts["record_source"] = driver.page_source
    shot("07-caseworker-record")

    # the language switch keeps the page (and its purpose)
    follow(driver, driver.find_element(By.ID, "lang-switch"))
    facts["record_h1_en"] = h1(driver) if driver.find_elements(By.TAG_NAME, "h1") else driver.page_source[:300]
    facts["record_url_en"] = driver.current_url
    shot("08-caseworker-record-en")
    follow(driver, driver.find_element(By.ID, "lang-switch"))

    nav(driver, "/console/requests")
    facts["listing"] = driver.find_element(By.ID, "requests").text
    facts["listing_record_links"] = len(driver.find_elements(By.CSS_SELECTOR, "#requests a[href*='/record?']"))
    shot("09-caseworker-requests")
    return facts


def test_the_caseworker_starts_from_one_id_number_and_reads_the_record(published, household):
    f = published
    today = dt.datetime.now(dt.timezone.utc).date()

    def asks(m) -> list[str]:
        """What the members page asks for a member: their own signed form (but the applicant's, given on the first
        page) for an adult, a guardian for a minor, and for both the optional financial consent form (a minor's
        signed by the guardian); nothing if gone."""
        if m.status != "normal":
            return []
        adult = (today.year - m.birth_date.year - ((today.month, today.day) < (m.birth_date.month,
                                                                                 m.birth_date.day))) >= 18
        if not adult:
            return ["fin_form", "guardian"]
        return ["fin_form"] if m.id_number == f["head"].id_number else ["fin_form", "form"]

    # every registered member, with name and ID number (the department's own case), checked unless gone
    assert f["members"] == {m.id_number: {"name": m.name, "included": m.status == "normal", "asks": asks(m)}
                            for m in household.members}
    assert {tuple(a) for a in map(asks, household.members)} == {(), ("fin_form", "guardian"), ("fin_form",),
                                                                ("fin_form", "form")}  # K shows every case
    assert f["sources_checked"] == 11
    assert f["status_before"] in ("received", "running") and not f["record_link_before"]
    assert f["status_after"] == "published" and f["source_rows"] == 11
    assert f["record_h1"] == "家庭经济状况核对报告" and f["screening_rows"] >= 1
    assert len(f["record_labels"]) == len(set(f["record_labels"])), f["record_labels"]  # each fact its own label
    assert sorted(f["record_members"]) == sorted(m.name for m in household.members if m.status == "normal")
    assert all(m.id_number not in f["record_source"] for m in household.members)  # masked in the record
    assert f["record_h1_en"] == "Household economic status record", f["record_url_en"]
    assert CASE_REF in f["listing"] and f["listing_record_links"] >= 1


def test_the_record_and_the_requests_list_fit_a_phone(published, driver, shot, tokens):
    sign_in(driver, published["base"], tokens["caseworker"])  # the module's one browser: whoever signed in last
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": True})
    try:
        driver.get(published["record_url"])
        wait(driver).until(EC.presence_of_element_located((By.ID, "record-members")))
        assert_fits(driver, "record")
        shot("10-phone-record")
        driver.get(published["base"] + "/console/requests")
        wait(driver).until(EC.presence_of_element_located((By.ID, "requests")))
        assert_fits(driver, "requests")
        shot("11-phone-requests")
        driver.get(published["base"] + "/console/requests/new")
        wait(driver).until(EC.presence_of_element_located((By.ID, "lookup-form")))
        assert_fits(driver, "new request")
        shot("12-phone-new-request")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# -- the auditor ------------------------------------------------------------------------------
def test_the_auditor_checks_integrity_and_downloads_a_persons_timeline(published, driver, shot, tokens, downloads):
    from consent.tree import make_checkpoint

    base, head = published["base"], published["head"]
    with session() as s:
        make_checkpoint(s, keyring().signing_key)
    # an unusual read: another department's caseworker asks for the household's record (no browser needed)
    other_record = published["record_url"].replace(f"purpose={PURPOSE}", "purpose=medical")
    with httpx.Client(base_url=base, follow_redirects=False) as c:
        assert c.post("/console/login", data={"token": tokens["other"]}).status_code == 303
        refused = c.get(other_record)
        assert refused.status_code == 404 and 'id="not-entitled"' in refused.text, refused.text[:800]

    sign_in(driver, base, tokens["auditor"])
    nav(driver, "/console/audit/")
    # the refused read and this sign-in came after the checkpoint: intact, but not all under a signed checkpoint
    assert driver.find_element(By.ID, "integrity").get_attribute("data-state") == "amber"
    shot("13-auditor-integrity")

    # a mistyped ID number is refused without being echoed; the language switch of that answer leads to the form
    wrong = head.id_number[:17] + ("0" if head.id_number[17] != "0" else "1")
    driver.find_element(By.ID, "id_number").send_keys(wrong)
    follow(driver, driver.find_element(By.ID, "show-timeline"))
    assert driver.find_element(By.ID, "form-error").is_displayed() and wrong not in driver.page_source
    follow(driver, driver.find_element(By.ID, "lang-switch"))
    assert h1(driver) == "Audit" and path_of(driver) == "/console/audit/"
    follow(driver, driver.find_element(By.ID, "lang-switch"))
    assert h1(driver) == "审计"

    driver.find_element(By.ID, "id_number").send_keys(head.id_number)
    follow(driver, driver.find_element(By.ID, "show-timeline"))
    ref = keyring().pseudonym(head.id_number)
    assert path_of(driver) == f"/console/audit/persons/{ref}"
    rows = driver.find_elements(By.CSS_SELECTOR, "#events tr[data-kind]")
    kinds = {r.get_attribute("data-kind") for r in rows}
    assert {"entrustment.received", "consent.allowed", "fetch.completed", "record.published", "record.read",
            "household.lookup"} <= kinds
    assert head.id_number not in driver.page_source and head.name not in driver.page_source
    shown = {r.get_attribute("data-seq") for r in rows}
    shot("14-auditor-timeline")

    csv_file = download(driver, "export-csv", downloads, "timeline-")
    table = list(csv.reader(io.StringIO(csv_file.read_text("utf-8-sig"))))
    assert table[0] == ["序号", "时间（北京时间）", "类型代码", "类型", "账号", "部门", "部门代码", "用途", "业务编号", "内容", "详情"]
    exported = {r[0]: r[2] for r in table[1:]}
    assert shown <= set(exported) and {"consent.allowed", "record.read"} <= set(exported.values())
    assert head.id_number not in csv_file.read_text("utf-8-sig")

    nav(driver, "/console/audit/unusual")
    assert h1(driver) == "异常查阅"
    assert driver.find_elements(By.CSS_SELECTOR, '#unusual tr[data-kind="no_open_case"]')
    shot("15-auditor-unusual")


# -- staff ------------------------------------------------------------------------------------
def test_staff_see_sources_quarantine_and_validation_in_both_languages(published, driver, shot, tokens):
    base = published["base"]
    sign_in(driver, base, tokens["staff"])
    nav(driver, "/console/sources")
    assert h1(driver) == "数据源状态与校验通过率"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#sources tr[data-source]")) == 11
    assert driver.find_elements(By.CSS_SELECTOR, "#sources .good-bar")  # the verified request's validation runs
    shot("16-staff-sources")

    nav(driver, "/console/quarantine")
    assert h1(driver) == "隔离区" and driver.find_element(By.ID, "rows").is_displayed()
    shot("17-staff-quarantine")

    nav(driver, "/console/data-docs/")
    assert h1(driver) == "数据校验结果"
    assert driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    shot("18-staff-validation")

    follow(driver, driver.find_element(By.ID, "lang-switch"))
    assert h1(driver) == "Validation results"
    assert driver.find_element(By.CSS_SELECTOR, 'header a[href="/console/sources"]').text == "Sources"
    shot("19-staff-validation-en")
    nav(driver, "/console/sources")  # the choice is remembered
    assert h1(driver) == "Sources: health, freshness, validation"
    assert "Validation pass rate" in driver.find_element(By.CSS_SELECTOR, "#sources thead").text
    shot("20-staff-sources-en")
    print(f"\nconsole screenshots in {artifacts_dir()}")
