"""The auditor's job in a real browser, from the sign-in page: "who read this person's data, and why".

A caseworker of 铁西区's civil-affairs bureau looks a household up (一证通办), files the request, the hub verifies it
(run_inline against the simulated agencies) and the caseworker reads the record; a medical-security caseworker
tries to read it without a case (refused). All of it is seeded through the services. The auditor then signs in,
finds the ledger amber (entries not under a signed checkpoint, with their number), signs a checkpoint (green), enters
the spouse's ID number (a member found by the lookup, not its applicant) and sees each lookup and read with the
account's name, the department, the purpose and the case number, at the desktop's size and a phone's, in Chinese
and English, and downloads the timeline with the same columns. Each step leaves a screenshot in the artifacts folder.
"""

from __future__ import annotations

import csv
import io
from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from agencies.population import household_in_population
from core.crypto import keyring
from hub.services.clients import create_client
from hub.services.errors import NotEntitled
from hub.services.lookup import SignedForm, household_members
from hub.services.reads import read_record
from hub.stages.intake import create_request
from hub.stages.pipeline import run_inline
from tests.support.console import DESKTOP, PHONE, WAIT, download, follow
from tests.support.households import sample

K = 21  # head, spouse, a parent and a daughter
DEPARTMENT, CASE_REF, PURPOSE = "MZ-210303", "TX-2026-0521", "dibao"
CASEWORKER, MEDICAL = "张敏（铁西区民政局）", "刘洋（铁西区医保局）"
FORM = SignedForm("application/pdf", b"%PDF-1.4\n% the applicant's signed form\n" + b"0" * 2048 + b"\n%%EOF\n")


@pytest.fixture(scope="module")
def seeded(live_server):
    """The caseworker's and the medical caseworker's work, through the services; the auditor's token."""
    caseworker, _ = create_client(CASEWORKER, "department", DEPARTMENT)
    medical, _ = create_client(MEDICAL, "department", "YB-210303")
    hh = household_in_population(7, 50, K)
    head = next(m for m in hh.members if m.relation == "head")
    spouse = next(m for m in hh.members if m.relation == "spouse")
    household_members(head.id_number, department=DEPARTMENT, client_id=caseworker.id, purpose=PURPOSE,
                      case_ref=CASE_REF, signed_form=FORM)
    request_id = create_request({**sample(K, sources=["household", "tax", "bank"], department=DEPARTMENT),
                                 "case_ref": CASE_REF}, client_id=caseworker.id)
    result = run_inline(request_id)
    assert result.status == "published"
    read_record(result.household_ref, PURPOSE, None, caseworker)
    with pytest.raises(NotEntitled):  # no case of its own: refused, and an entry all the same
        read_record(result.household_ref, "medical", None, medical)
    return {"base": live_server.url, "spouse": spouse, "hh": hh,
            "auditor": create_client("审计员 陈静", "auditor")[1]}


def wait(driver) -> WebDriverWait:
    return WebDriverWait(driver, WAIT)


def path_of(driver) -> str:
    return urlparse(driver.current_url).path


def fits(driver, width: int) -> dict:
    """The page's width against the viewport's, and elements sticking out beyond it (none may, on a phone)."""
    return driver.execute_script("""
        const width = arguments[0], out = [];
        for (const el of document.querySelectorAll('body *')) {
          const r = el.getBoundingClientRect();
          if (r.right > width + 1) out.push(el.tagName + (el.id ? '#' + el.id : '') + ' right=' + Math.round(r.right));
        }
        return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, offenders: out.slice(0, 8)};
        """, width)


def reads_shown(driver) -> list[dict]:
    """The "who read" table's rows: each column's text, and the entry's kind code (``data``)."""
    columns = ("kind", "account", "department", "purpose", "case", "what")
    return [{k: row.find_element(By.CSS_SELECTOR, f"td.{k}").text.strip() for k in columns}
            | {"data": row.get_attribute("data-kind")}
            for row in driver.find_elements(By.CSS_SELECTOR, "#reads tbody tr")]


def sign_in(driver, base: str, token: str) -> None:
    driver.get(base + "/console/login")
    driver.delete_all_cookies()
    driver.get(base + "/console/login")
    wait(driver).until(EC.visibility_of_element_located((By.ID, "token"))).send_keys(token)
    follow(driver, driver.find_element(By.ID, "signin"))
    assert path_of(driver) == "/console/"


@pytest.fixture(params=["desktop", "phone"])
def size(request, driver):
    if request.param == "phone":
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": True})
    yield request.param
    if request.param == "phone":
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_auditor_finds_who_read_a_persons_data_and_why(seeded, driver, shot, size):
    base, spouse = seeded["base"], seeded["spouse"]
    width = PHONE[0] if size == "phone" else DESKTOP[0]
    sign_in(driver, base, seeded["auditor"])
    follow(driver, driver.find_element(By.CSS_SELECTOR, 'header a[href="/console/audit/"]'))

    # amber: intact, but entries (the caseworkers' work, this sign-in) wait for a signed checkpoint
    integrity = driver.find_element(By.ID, "integrity")
    assert integrity.get_attribute("data-state") == "amber", integrity.text
    waiting = int(driver.find_element(By.ID, "after-checkpoint").text)
    assert waiting >= 1 and not driver.find_elements(By.ID, "intact")
    assert driver.find_element(By.ID, "not-checkpointed").text == f"⚠ 完整，但有 {waiting} 条记录尚未纳入签名检查点"
    shot(f"auditor-{size}-1-amber")
    follow(driver, driver.find_element(By.ID, "sign-checkpoint"))
    integrity = driver.find_element(By.ID, "integrity")
    assert integrity.get_attribute("data-state") == "green" and driver.find_element(By.ID, "intact").is_displayed()
    assert driver.find_element(By.ID, "after-checkpoint").text == "0" and driver.find_element(By.ID, "signed")
    assert not driver.find_elements(By.ID, "sign-checkpoint")
    shot(f"auditor-{size}-2-green")

    # the spouse's ID number: a member the lookup found, not its applicant
    driver.find_element(By.ID, "id_number").send_keys(spouse.id_number)
    follow(driver, driver.find_element(By.ID, "show-timeline"))
    assert path_of(driver) == f"/console/audit/persons/{keyring().pseudonym(spouse.id_number)}"
    assert spouse.id_number not in driver.page_source and spouse.name not in driver.page_source
    shown = reads_shown(driver)
    lookup = next(r for r in shown if r["data"] == "household.lookup")
    read = next(r for r in shown if r["data"] == "record.read")
    denied = next(r for r in shown if r["data"] == "record.read_denied")
    for row in (lookup, read):
        assert (row["account"], row["department"], row["purpose"], row["case"]) == (
            CASEWORKER, "鞍山市铁西区民政局", "最低生活保障", CASE_REF), row
    assert lookup["kind"] == "户籍成员查询" and lookup["what"] == f"户籍、已查到、查到 {len(seeded['hh'].members)} 名成员"
    assert read["kind"] == "查阅核对报告" and "认定结论" in read["what"] and "家庭成员" in read["what"]
    assert (denied["account"], denied["department"], denied["purpose"], denied["what"]) == (
        MEDICAL, "鞍山市铁西区医疗保障局", "医疗救助", "无有效委托的查阅")
    # no bare ids where the names belong
    text = driver.find_element(By.ID, "reads").text
    assert "client_id=" not in text and "basis=" not in text
    assert {"consent.allowed", "fetch.completed", "record.published"} <= {
        r.get_attribute("data-kind") for r in driver.find_elements(By.CSS_SELECTOR, "#events tbody tr")}
    if size == "phone":
        m = fits(driver, width)
        assert m["inner"] == width and m["scroll"] <= width + 1 and not m["offenders"], m
    shot(f"auditor-{size}-3-timeline")

    follow(driver, driver.find_element(By.ID, "lang-switch"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Timeline"
    shown = reads_shown(driver)
    read = next(r for r in shown if r["data"] == "record.read")
    assert (read["kind"], read["account"], read["department"], read["purpose"], read["case"]) == (
        "record read", CASEWORKER, "Civil Affairs Bureau, Tiexi District, Anshan", "minimum living guarantee", CASE_REF)
    if size == "phone":
        m = fits(driver, width)
        assert m["scroll"] <= width + 1 and not m["offenders"], m
    shot(f"auditor-{size}-4-timeline-en")

    # the refused read among unusual reads, with its account and department named too
    follow(driver, driver.find_element(By.CSS_SELECTOR, 'header a[href="/console/audit/unusual"]'))
    refused = [(r.find_element(By.CSS_SELECTOR, "td.account").text, r.find_element(By.CSS_SELECTOR, "td.department").text)
               for r in driver.find_elements(By.CSS_SELECTOR, '#unusual tr[data-kind="no_open_case"]')]
    assert (MEDICAL, "Healthcare Security Bureau, Tiexi District, Anshan\nYB-210303") in refused, refused
    if size == "phone":
        m = fits(driver, width)
        assert m["scroll"] <= width + 1 and not m["offenders"], m
    shot(f"auditor-{size}-5-unusual-en")

    # English amber, then back to Chinese (the language is a cookie)
    follow(driver, driver.find_element(By.CSS_SELECTOR, 'header a[href="/console/audit/"]'))
    amber = driver.find_element(By.ID, "not-checkpointed").text
    assert amber.startswith("⚠ Intact, but ") and amber.endswith(" entries are not yet under a signed checkpoint")
    assert driver.find_element(By.ID, "sign-checkpoint").text == "Sign a checkpoint now"
    shot(f"auditor-{size}-6-amber-en")
    follow(driver, driver.find_element(By.ID, "lang-switch"))


def test_the_timeline_downloads_with_the_same_columns(seeded, driver, downloads):
    base, spouse = seeded["base"], seeded["spouse"]
    sign_in(driver, base, seeded["auditor"])
    driver.get(base + "/console/audit/")
    driver.find_element(By.ID, "id_number").send_keys(spouse.id_number)
    follow(driver, driver.find_element(By.ID, "show-timeline"))
    text = download(driver, "export-csv", downloads, "timeline-").read_text("utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    read = next(r for r in table if r["类型代码"] == "record.read")
    assert (read["账号"], read["部门"], read["部门代码"], read["用途"], read["业务编号"]) == (
        CASEWORKER, "鞍山市铁西区民政局", DEPARTMENT, "最低生活保障", CASE_REF)
    assert "client_id=" not in text and "basis=" not in text and spouse.id_number not in text
