"""The forms step in a real browser (headless Chromium), at the desktop's size and a phone's, in Chinese and English:
a caseworker looks up a household with children, forgets one adult's signed form and gets a blocking message on that
member's row with everything else kept (the forms attached shown as uploaded), attaches it, submits, and the request
is made with every member's consent and the minors' financial consent from their guardian. At the phone's size the
members are stacked cards: nothing wider than the screen, no text squeezed to a character a line."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from agencies.population import household_in_population
from core.crypto import keyring
from core.store import Authorization, AuthorizationMember, session
from hub.services.clients import create_client
from sqlalchemy import select
from tests.support.console import DESKTOP, PHONE, WAIT, assert_readable, follow

DEPARTMENT = "MZ-210377"
# (language, window, generated household): head, spouse and two minors, with the head's parents (4); three minors (34)
CASES = [("zh", DESKTOP, 4), ("en", PHONE, 34), ("en", DESKTOP, 34), ("zh", PHONE, 4)]
TEXTS = {"zh": ("成年成员须上传本人签字的授权书", "已上传 ✓"), "en": ("An adult member must sign their own form", "Uploaded ✓")}


@pytest.fixture(scope="module")
def token():
    return create_client("forms-step caseworker", "department", DEPARTMENT)[1]


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forms-step")

    def make(name: str) -> str:
        path = folder / f"{name}.pdf"
        path.write_bytes(b"%PDF-1.4\n% scan of a form signed for " + name.encode() + b"\n" + b"0" * 2048 + b"\n%%EOF\n")
        return str(path)

    return make


def at_size(driver, size) -> None:
    if size == PHONE:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": True})
    else:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.mark.parametrize("lang, size, k", CASES, ids=[f"{c[0]}-{c[1][0]}" for c in CASES])
def test_a_forgotten_form_is_named_on_its_row_and_nothing_is_lost(driver, live_server, shot, token, forms, lang,
                                                                     size, k):
    household = household_in_population(7, 50, k)
    head = next(m for m in household.members if m.relation == "head")
    spouse = next(m for m in household.members if m.relation == "spouse")
    tag = f"forms-{lang}-{size[0]}"
    wait = WebDriverWait(driver, WAIT)
    base = live_server.url
    driver.get(base + "/console/login")
    driver.delete_all_cookies()
    driver.get(f"{base}/console/login?lang={lang}")
    wait.until(EC.visibility_of_element_located((By.ID, "token"))).send_keys(token)
    follow(driver, driver.find_element(By.ID, "signin"))
    at_size(driver, size)
    try:
        driver.get(base + "/console/requests/new")
        driver.find_element(By.ID, "case_ref").send_keys(f"MZ-FORMS-{lang}-{size[0]}")
        driver.find_element(By.ID, "id_number").send_keys(head.id_number)
        driver.find_element(By.ID, "applicant_form").send_keys(forms("applicant"))
        follow(driver, driver.find_element(By.ID, "lookup"))
        assert driver.find_elements(By.ID, "members"), driver.find_element(By.TAG_NAME, "body").text[:600]
        rows = {driver.find_element(By.NAME, f"m{i}_id").get_attribute("value"): i
                for i in range(int(driver.find_element(By.NAME, "count").get_attribute("value")))}
        s = rows[spouse.id_number]
        if size == PHONE:
            assert_readable(driver, f"{tag} members page")
        shot(f"{tag}-1-members")

        # the adults' forms and financial consent forms, but the spouse's own form; none for the minors (their
        # guardian signs for them)
        minors = {g.get_attribute("name").removesuffix("_guardian") for g in
                  driver.find_elements(By.CSS_SELECTOR, "select[name$=_guardian]")}
        for upload in driver.find_elements(By.CSS_SELECTOR, "#request-form input[type=file]"):
            name = upload.get_attribute("name")
            if name != f"m{s}_form" and name.removesuffix("_fin_form") not in minors:
                upload.send_keys(forms(name))
        driver.find_element(By.CSS_SELECTOR, "input[name=valid_days]").clear()
        driver.find_element(By.CSS_SELECTOR, "input[name=valid_days]").send_keys("180")
        driver.find_element(By.CSS_SELECTOR, "input[name=sources][value=securities]").click()  # untick one
        follow(driver, driver.find_element(By.ID, "submit-request"))

        # back on the members page, the message on the spouse's row, everything kept
        assert urlparse(driver.current_url).path == "/console/requests"
        message, uploaded = TEXTS[lang]
        error = wait.until(EC.visibility_of_element_located((By.ID, f"m{s}_form-error")))
        assert message in error.text
        assert driver.find_element(By.ID, f"member-{s}").find_element(By.ID, f"m{s}_form-error") == error
        assert not driver.find_elements(By.ID, "lookup-form")
        kept = [e for e in driver.find_elements(By.CSS_SELECTOR, "[id$=_form-kept], [id$=_fin-kept]")]
        assert kept and all(e.text == uploaded for e in kept)
        assert driver.find_element(By.CSS_SELECTOR, "input[name=valid_days]").get_attribute("value") == "180"
        assert not driver.find_element(By.CSS_SELECTOR, "input[name=sources][value=securities]").is_selected()
        assert all(driver.find_element(By.ID, f"m{i}_include").is_selected() for i in rows.values())
        if lang == "zh":
            text = driver.find_element(By.TAG_NAME, "main").text
            assert not re.search(r"[A-Z]{3,}_[A-Z_]+|\b(err|refusal)_\w+", text), text
        if size == PHONE:
            assert_readable(driver, f"{tag} members page with a message")
        shot(f"{tag}-2-forgotten-form")

        driver.find_element(By.ID, f"m{s}_form").send_keys(forms("spouse"))
        follow(driver, driver.find_element(By.ID, "submit-request"))
        match = re.fullmatch(r"/console/requests/([0-9a-f]{32})", urlparse(driver.current_url).path)
        assert match, driver.find_element(By.TAG_NAME, "main").text[:800]
        shot(f"{tag}-3-submitted")
    finally:
        at_size(driver, DESKTOP)

    keys = keyring()
    with session() as db:
        auth = db.scalars(select(Authorization).where(Authorization.request_id == match.group(1))).one()
        stored = {m.person_ref: m for m in db.scalars(select(AuthorizationMember).where(
            AuthorizationMember.authorization_id == auth.id))}
    living = [m for m in household.members if m.status == "normal"]
    assert set(stored) == {keys.pseudonym(m.id_number) for m in living}  # nobody dropped
    minors = [m for m in living if stored[keys.pseudonym(m.id_number)].evidence_sha256 is None]
    assert minors
    for m in minors:
        row = stored[keys.pseudonym(m.id_number)]
        guardian = next(g for g in stored.values() if g.person_ref == row.guardian_ref)
        assert guardian.evidence_sha256 and guardian.financial_evidence_sha256
        # the guardian's financial consent covers the minor they sign for
        assert row.financial_evidence_sha256 == guardian.financial_evidence_sha256
    assert all(set(m.financial_sources) == {"bank", "commercial_insurance", "internet_finance"}
               for m in stored.values())
