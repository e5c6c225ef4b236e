"""What a resident meets on /m/ (掌上办, 码上办), in a real browser: headless Chromium driven by Selenium with clicks and
typing, at a phone's size (390x844) and a desktop's, in Chinese (the default) and English, against the hub's app
served by uvicorn with its own worker, the simulated agencies and their simulated identity provider (the console's
set-up: tests/hub/web/console/conftest.py and ./conftest.py).

Household K of the tests' population (seed 7, 50 households; among the 20 the provider's login page lists) has two
adults and a minor. A department asks them to sign on their phones (``mobile_signing``): the caseworker's request page
shows each member's QR code and link. The head signs in through the provider's login page (picks themselves, reads the
simulated text message, types the code), reads what is asked, ticks the separate financial consent and signs; opens
the link again (answered already) and the spouse's (not theirs); signs for the minor as guardian. The spouse signs in
English, last: the app's worker verifies and publishes. The spouse then follows the result, the grant a department
reports, their data with a downloaded inclusion proof, withdraws one source, reads their messages and applies; the
caseworker accepts the application, which makes a request with QR codes.

Every page is looked at in both sizes and languages (lang-switch), each with a screenshot in the ``residents``
subfolder of the artifacts folder: nothing sticks out or is squeezed at 390 px, no whole ID number in a page or an
address (masked, 2103**********123X, where shown).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import segno
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from consent.tree import check_proof, checkpoint_now, verifier_key
from core.crypto import keyring
from core.settings import settings
from core.store import Revocation, SigningInvitation, session
from hub.services.clients import create_client
from hub.services.residents import invitation_links
from hub.stages.intake import create_request
from hub.web.console.pages import PURPOSE_NAMES, department_label
from hub.web.residents.pages import TEXT
from schemas.codes import mask_id
from schemas.sources import FINANCIAL_SOURCES
from schemas.vocabulary import ANSWER_NAMES, SOURCE_NAMES
# this module's live server, agencies and store: the console's (not in ./conftest.py, where they would change
# test_pages.py's set-up)
from tests.hub.web.console.conftest import agencies, live_server, module_store  # noqa: F401
from tests.hub.web.console.test_browser import assert_fits, sign_in as console_sign_in
from tests.support.console import PHONE, WAIT, assert_readable, download, follow
from tests.support.households import ALL_SOURCES, population, sample

K = 17  # head and spouse (adults), a grandchild born 2025 (a minor): every kind of signature
DEPARTMENT, PURPOSE, CASE_REF = "MZ-210302", "dibao", "MZ-2026-1717"
GRANT_YUAN = "1234.50"
APPLY_PROGRAMME, APPLY_DIVISION = "temporary", "210302"  # to MZ-210302, the same caseworker
FINISHED = ("published", "refused", "failed")
MASKED = re.compile(r"\d{4}\*{10}\d{3}[\dX]")


# text that runs out of the box holding it (a long word or address that does not break): assert_readable measures
# elements, and such a text leaves every element's box in place
_SPILLS = """
const out = [], walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode;
  if (!node.textContent.trim() || node.parentElement.closest('select, option, script, style')) continue;
  let box = node.parentElement;
  while (box && ['inline', 'contents'].includes(getComputedStyle(box).display)) box = box.parentElement;
  const range = document.createRange();
  range.selectNodeContents(node);
  const r = range.getBoundingClientRect(), b = box.getBoundingClientRect();
  if (r.width > 0 && b.width > 0 && (r.right > b.right + 1 || r.left < b.left - 1))
    out.push(box.tagName.toLowerCase() + (box.className ? '.' + String(box.className).trim().replace(/\\s+/g, '.') : '')
             + ' "' + node.textContent.trim().slice(0, 16) + '" ' + Math.round(r.left) + '-' + Math.round(r.right)
             + ' in ' + Math.round(b.left) + '-' + Math.round(b.right));
}
return out.slice(0, 8);
"""


def wait(driver, timeout: float = WAIT) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,))


def text_of(driver, css: str) -> str | None:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else None


class Walk:
    """The module's one browser as it walks the pages: at a phone's size by default, each page looked at in both
    sizes (and, by its language switch, both languages) with a screenshot of each, the problems found on the way
    (overflow, squeezed text, a whole ID number in a page or an address) kept for the last test to name."""

    def __init__(self, driver, shot, base: str, id_numbers: set[str]):
        self.d, self._shot, self.base, self.ids = driver, shot, base, id_numbers
        self.problems: list[str] = []
        self.urls: list[str] = []
        self.headings: dict[str, dict[tuple[str, str], str]] = {}  # page -> (size, lang) -> h1
        self.shots: dict[str, list[Path]] = {}
        self.n = 0

    # -- sizes --------------------------------------------------------------------------------------------------------
    def phone(self) -> None:
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True})

    def desktop(self) -> None:
        self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    # -- moving -------------------------------------------------------------------------------------------------------
    def step(self) -> None:
        """After each step: the address the browser is at carries no whole ID number."""
        url = self.d.current_url
        self.urls.append(url)
        if any(i in url.upper() for i in self.ids):
            self.problems.append(f"{urlparse(url).path}: a whole ID number in the address")

    def go(self, path: str) -> None:
        self.d.get(self.base + path)
        self.step()

    def click(self, element) -> None:
        follow(self.d, element)
        self.step()

    def reload(self) -> None:
        self.d.refresh()
        wait(self.d).until(lambda d: d.execute_script("return document.readyState") == "complete")
        self.step()

    def path(self) -> str:
        return urlparse(self.d.current_url).path

    # -- looking ------------------------------------------------------------------------------------------------------
    def lang(self) -> str:
        return "en" if (self.d.find_element(By.TAG_NAME, "html").get_attribute("lang") or "") == "en" else "zh"

    def check(self, name: str, size: str, hidden: bool) -> None:
        lang = self.lang()
        where = f"{name} ({size}, {lang})"
        self.step()
        if hidden and any(i in self.d.page_source.upper() for i in self.ids):
            self.problems.append(f"{where}: a whole ID number in the page")
        try:
            if size == "phone":
                assert_fits(self.d, where)
            assert_readable(self.d, where)
        except AssertionError as exc:
            self.problems.append(str(exc))
        spills = self.d.execute_script(_SPILLS)
        if spills:
            self.problems.append(f"{where}: text out of its box: {spills}")
        self.headings.setdefault(name, {})[(size, lang)] = text_of(self.d, "h1") or self.d.title
        self.shots.setdefault(name, []).append(self._shot(f"{self.n:02d}-{name}-{size}-{lang}"))

    def look(self, name: str, hidden: bool = True) -> None:
        """The current page (the answer to a form: not to be loaded again) at both sizes."""
        self.n += 1
        self.phone()
        self.check(name, "phone", hidden)
        self.desktop()
        self.check(name, "desktop", hidden)
        self.phone()

    def tour(self, name: str, switch: str = "#lang-switch", hidden: bool = True) -> None:
        """The current page (loaded at a phone's size) at both sizes in both languages, switched by its link
        ``switch``; it ends loaded again in its first language at a phone's size. ``hidden``: no whole ID number in
        it (the caseworker's applications page shows the department's own case)."""
        self.n += 1
        self.phone()
        self.check(name, "phone", hidden)
        self.desktop()
        self.reload()
        self.check(name, "desktop", hidden)
        self.click(self.d.find_element(By.CSS_SELECTOR, switch))
        self.check(name, "desktop", hidden)
        self.phone()
        self.reload()
        self.check(name, "phone", hidden)
        self.click(self.d.find_element(By.CSS_SELECTOR, switch))

    # -- people -------------------------------------------------------------------------------------------------------
    def forget(self) -> None:
        """Nobody signed in any more (the hub's and the console's cookies, the language chosen)."""
        self.d.execute_cdp_cmd("Network.clearBrowserCookies", {})

    def provider_sign_in(self, choice: str, tour: str | None = None, english: bool = False) -> dict:
        """On the provider's login page: pick the person ``choice`` (household-member), type the code of the
        simulated text message the page shows, sign in; what the page showed."""
        wait(self.d).until(EC.presence_of_element_located((By.ID, "otp")))
        facts = {"url": self.d.current_url}
        if tour:
            self.tour(tour, switch="header a[hreflang]")
        if english:
            self.click(self.d.find_element(By.CSS_SELECTOR, "header a[hreflang]"))
        facts["lang"] = self.lang()
        person = Select(self.d.find_element(By.ID, "person"))
        person.select_by_value(choice)
        facts["option"] = person.first_selected_option.text
        facts["sms"] = self.d.find_element(By.CSS_SELECTOR, "p.sms").text
        code = re.search(r"\b(\d{6})\b", facts["sms"]).group(1)
        self.d.find_element(By.ID, "otp").send_keys(code)
        self.click(self.d.find_element(By.CSS_SELECTOR, "form button[type=submit]"))
        return facts


def signing_page(driver) -> dict:
    """What the signing page shows: for whom, the terms (label -> value), the texts, the financial box's state."""
    terms = {}
    for dl in driver.find_elements(By.CSS_SELECTOR, "dl.facts"):
        terms.update(zip([e.text for e in dl.find_elements(By.TAG_NAME, "dt")],
                         [e.text for e in dl.find_elements(By.TAG_NAME, "dd")]))
    box = driver.find_elements(By.ID, "financial-consent")
    beside = driver.execute_script("""
        const box = document.getElementById('financial-consent');
        if (!box) return null;
        const right = box.getBoundingClientRect().right;
        return Array.from(box.parentElement.querySelector('span').getClientRects()).every(r => r.left >= right);""")
    return {"box_beside": beside, "who": text_of(driver, "#sign-who"), "terms": terms,
            "sources": text_of(driver, "#asked-sources"), "financial": text_of(driver, "#asked-financial"),
            "text": text_of(driver, "#sign-text"),
            "financial_text": text_of(driver, "#financial-text"),
            "ticked_before": box[0].is_selected() if box else None,
            "refused": driver.find_element(By.ID, "refused").get_attribute("data-code")
            if driver.find_elements(By.ID, "refused") else None}


def sign(walk: Walk, financial: bool) -> None:
    if financial:
        walk.d.find_element(By.ID, "financial-consent").click()
    walk.click(walk.d.find_element(By.ID, "sign"))


def invitations_shown(driver) -> list[dict]:
    """The console request page's invitations: title, state, link, and the QR code's path (None without one)."""
    out = []
    for card in driver.find_elements(By.CSS_SELECTOR, "#invitations .invitation"):
        svg = card.find_elements(By.CSS_SELECTOR, ".qr svg")
        path = card.find_elements(By.CSS_SELECTOR, ".qr svg path")
        out.append({"title": card.find_element(By.TAG_NAME, "h3").text, "state": card.get_attribute("data-state"),
                    "link": text_of(card, ".inv-link"), "qr_width": svg[0].size["width"] if svg else 0,
                    "qr_path": path[0].get_attribute("d") if path else None})
    return out


def qr_path(text: str) -> str:
    """The path of the QR code (segno, as the console makes it) that encodes ``text``."""
    return re.search(r' d="([^"]+)"', segno.make(text, error="m").svg_inline(scale=3)).group(1)


@pytest.fixture(scope="module")
def household():
    """Household K as the provider lists it: (its members of status normal in the request's order, their choice
    values on the provider's login page)."""
    hh = population().households[K]
    members = [m for m in hh.members if m.status == "normal"]
    assert [m.relation for m in members] == ["head", "spouse", "grandchild"]  # two adults and a minor (born 2025)
    return members, {m.id_number: f"{K}-{j}" for j, m in enumerate(hh.members)}


@pytest.fixture(scope="module")
def caseworker():
    return create_client("residents' browser caseworker", "department", DEPARTMENT)[1]


@pytest.fixture(scope="module")
def walk(driver, shot, live_server):
    every_id = {p.id_number for h in population().households for p in h.members}
    w = Walk(driver, shot, live_server.url, every_id)
    w.phone()
    yield w
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# -- 1 and 2: the QR codes, signing -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signed(walk, household, caseworker):
    """The department's request with mobile signing, its QR codes on the caseworker's page, and every member's
    signature in the browser: the facts seen along the way."""
    members, choices = household
    head, spouse, minor = members
    doc = sample(K, sources=list(ALL_SOURCES))
    doc.pop("authorization")
    doc.update(mobile_signing={}, case_ref=CASE_REF)
    request_id = create_request(doc, department=DEPARTMENT)
    links = {i.name: i for i in invitation_links(request_id, DEPARTMENT)}
    link = {m.id_number: links[m.name] for m in members}
    f: dict = {"request_id": request_id, "members": members, "link": link}
    d = walk.d

    # the caseworker's request page: each member's QR code and link
    console_sign_in(d, walk.base, caseworker)
    walk.go(f"/console/requests/{request_id}")
    f["invitations"] = invitations_shown(d)
    walk.tour("console-request-qr")

    # the head: the link, the provider's login page, the signing page
    walk.forget()
    walk.go(link[head.id_number].path)
    f["head_login"] = walk.provider_sign_in(choices[head.id_number], tour="provider-login")
    f["head_landed"] = walk.path()
    f["head_page"] = signing_page(d)
    walk.tour("sign-own")
    sign(walk, financial=True)
    f["head_answered"] = d.find_element(By.ID, "answered").get_attribute("data-signed")
    walk.look("signed-own")

    walk.go(link[head.id_number].path)  # one's own link again
    f["again"] = signing_page(d)
    f["again_text"] = text_of(d, "#refused")
    walk.tour("answered-already")
    walk.go(link[spouse.id_number].path)  # another adult's link
    f["not_yours"] = d.find_element(By.ID, "refused").get_attribute("data-code")
    f["not_yours_text"] = text_of(d, "#refused")
    walk.tour("not-yours")

    walk.go("/m/")  # home: the minor waits for a guardian
    f["home_masked"] = text_of(d, "#masked-id")
    f["home_hello"] = text_of(d, "#hello")
    f["minor_links"] = [a.get_attribute("href") for a in d.find_elements(By.CSS_SELECTOR, ".request a.btn.plain")]
    walk.tour("home")
    walk.click(d.find_element(By.CSS_SELECTOR, ".request a.btn.plain"))
    f["minor_landed"] = walk.path()
    f["minor_page"] = signing_page(d)
    walk.tour("sign-minor")
    sign(walk, financial=True)
    f["minor_answered"] = d.find_element(By.ID, "answered").get_attribute("data-signed")
    walk.look("signed-minor")
    walk.click(d.find_element(By.ID, "signout"))
    f["signed_out_at"] = walk.path()
    walk.tour("landing")

    # the spouse, in English, signs last
    walk.forget()
    walk.go("/m/?lang=en")
    walk.go(link[spouse.id_number].path)
    f["spouse_login"] = walk.provider_sign_in(choices[spouse.id_number], english=True)
    f["spouse_landed"] = walk.path()
    f["spouse_page"] = signing_page(d)
    sign(walk, financial=True)
    f["spouse_answered"] = d.find_element(By.ID, "answered").get_attribute("data-signed")
    f["started"] = text_of(d, "#started")
    walk.look("signed-last")

    with session() as s:
        f["stored"] = {i.person_ref: (i.state, i.signer_ref, i.financial, (i.evidence or {}).get("text"))
                       for i in s.scalars(select(SigningInvitation)
                                          .where(SigningInvitation.request_id == request_id))}
    return f


def test_the_caseworker_sees_each_members_qr_code_and_link(signed):
    f = signed
    base = settings().api_url.rstrip("/")
    assert len(f["invitations"]) == len(f["members"]) == 3
    for m, shown in zip(f["members"], f["invitations"]):
        assert m.name in shown["title"] and shown["state"] == "pending"
        assert shown["link"] == base + f["link"][m.id_number].path
        assert shown["qr_width"] >= 80  # big enough to scan from the screen
        assert shown["qr_path"] == qr_path(shown["link"])  # the QR code is of that very link


def test_residents_sign_in_at_the_provider_and_sign_for_themselves_and_a_minor(signed, agencies):
    f = signed
    head, spouse, minor = f["members"]
    keys = keyring()

    # the provider's own login page, with the person masked and the code shown as a text message
    assert f["head_login"]["url"].startswith(agencies.identity.issuer + "/authorize?")
    assert f["head_login"]["option"] == f"{head.name} {mask_id(head.id_number)}"
    assert f["spouse_login"]["lang"] == "en" and "Simulated text message code" in f["spouse_login"]["sms"]
    assert f["head_landed"] == f["link"][head.id_number].path  # back at the link, signed in
    assert f["spouse_landed"] == f["link"][spouse.id_number].path

    # what is asked, item by item, in each language
    def expected(i: int) -> dict:
        sep = ", " if i else "、"
        return {
            TEXT["who_asks"][i]: department_label(DEPARTMENT, i), TEXT["purpose"][i]: PURPOSE_NAMES[PURPOSE][i],
            TEXT["case_ref"][i]: CASE_REF,
            TEXT["sources"][i]: sep.join(SOURCE_NAMES[k][i] for k in ALL_SOURCES if k not in FINANCIAL_SOURCES),
            TEXT["financial"][i]: sep.join(SOURCE_NAMES[k][i] for k in ALL_SOURCES if k in FINANCIAL_SOURCES),
            TEXT["recheck"][i]: TEXT["days"][i].format(n=90), TEXT["data_life"][i]: TEXT["days"][i].format(n=30),
            TEXT["how_withdraw"][i]: TEXT["how_withdraw_text"][i]}

    for page, i in ((f["head_page"], 0), (f["minor_page"], 0), (f["spouse_page"], 1)):
        shown = {k: v for k, v in page["terms"].items() if k in expected(i)}
        assert shown == expected(i), page["terms"]
        start, _, end = page["terms"][TEXT["validity"][i]].partition(" – ")
        days = (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days
        assert days == 180 and abs((dt.date.fromisoformat(start) - dt.date.today()).days) <= 1
        assert page["ticked_before"] is False  # the separate financial consent is never ticked for anyone
        assert page["box_beside"] is True  # its words beside the box, every line (at a phone's width)
        assert page["financial_text"] and all(SOURCE_NAMES[k][i] in page["financial_text"] for k in FINANCIAL_SOURCES)
        assert not any(SOURCE_NAMES[k][i] in page["text"] for k in FINANCIAL_SOURCES)
    assert (f["head_page"]["who"], f["spouse_page"]["who"]) == (TEXT["sign_for_self"][0], TEXT["sign_for_self"][1])
    assert f["minor_page"]["who"] == TEXT["sign_for_minor"][0].format(name=minor.name)

    # signed, with the financial consent, the text shown being the text kept; the spouse's was the last answer
    assert f["head_answered"] == f["minor_answered"] == f["spouse_answered"] == "yes"
    assert f["started"] == TEXT["started"][1]
    ref = {m.id_number: keys.pseudonym(m.id_number) for m in f["members"]}
    stored = f["stored"]
    assert stored[ref[head.id_number]][:3] == ("signed", ref[head.id_number], True)
    assert stored[ref[minor.id_number]][:3] == ("signed", ref[head.id_number], True)  # the head as guardian
    assert stored[ref[spouse.id_number]][:3] == ("signed", ref[spouse.id_number], True)
    assert stored[ref[head.id_number]][3] == f["head_page"]["text"]
    assert stored[ref[minor.id_number]][3] == f["minor_page"]["text"]
    assert stored[ref[spouse.id_number]][3] == f["spouse_page"]["text"]

    # one's own link again: answered already; another adult's: refused, clearly
    assert f["again"]["refused"] == "used" and f["again"]["terms"] == {}
    assert f["again_text"] == TEXT["ref_used"][0].format(state=TEXT["state_signed"][0])
    assert f["not_yours"] == "not_you" and f["not_yours_text"] == TEXT["ref_not_you"][0]

    # home: the head by name and masked ID number, a link to sign for the minor; signing out leads to the door
    assert f["home_hello"] == TEXT["hello"][0].format(name=head.name)
    assert f["home_masked"] == mask_id(head.id_number) and MASKED.fullmatch(f["home_masked"])
    assert [urlparse(h).path for h in f["minor_links"]] == [f["link"][minor.id_number].path] == [f["minor_landed"]]
    assert f["signed_out_at"] == "/m/"


# -- 3: following, data, withdrawing, applying -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def followed(signed, walk, caseworker, downloads):
    """The spouse, still signed in (English), once the worker has verified the request: the result, a grant, the
    data with a proof, a withdrawal."""
    d, request_id = walk.d, signed["request_id"]
    f: dict = {}
    walk.go(f"/m/requests/{request_id}")
    deadline = time.monotonic() + 120  # the app's own worker verifies and publishes
    while d.find_element(By.ID, "stage").get_attribute("data-stage") not in FINISHED and time.monotonic() < deadline:
        time.sleep(1)
        walk.reload()
    f["stage"] = d.find_element(By.ID, "stage").get_attribute("data-stage")
    f["answer"] = d.find_element(By.ID, "answer").get_attribute("data-answer") if d.find_elements(By.ID, "answer") \
        else None
    f["answer_line"] = text_of(d, "#result p")
    f["reasons"] = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#reasons li")]
    f["source_lines"] = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#sources li")]
    f["sources"] = {li.get_attribute("data-source"): li.get_attribute("data-status")
                    for li in d.find_elements(By.CSS_SELECTOR, "#sources li")}
    walk.tour("request-result")

    # a department reports the assistance it granted (the JSON API)
    with httpx.Client(base_url=walk.base, headers={"Authorization": f"Bearer {caseworker}"}, timeout=30) as c:
        household_id = c.get(f"/v1/requests/{request_id}").json()["household_id"]
        f["grant_status"] = c.post("/v1/assistance", json={
            "household_id": household_id, "programme": PURPOSE, "granted_from": dt.date.today().isoformat(),
            "request_id": request_id, "monthly_amount": GRANT_YUAN}).status_code
    walk.go("/m/assistance")
    f["grants"] = []
    for card in d.find_elements(By.CSS_SELECTOR, ".grant"):
        dl = dict(zip([e.text for e in card.find_elements(By.TAG_NAME, "dt")],
                      [e.text for e in card.find_elements(By.TAG_NAME, "dd")]))
        f["grants"].append((card.find_element(By.TAG_NAME, "strong").text, dl))
    walk.tour("assistance")

    # my data, once a checkpoint covers it: a proof downloads and holds
    checkpoint_now(keyring().signing_key)
    walk.go("/m/data")
    f["entries"] = [e.get_attribute("data-kind") for e in d.find_elements(By.CSS_SELECTOR, ".entry")]
    f["proof_links"] = len(d.find_elements(By.CSS_SELECTOR, ".entry a.proof"))
    walk.tour("data")
    link = d.find_element(By.CSS_SELECTOR, ".entry a.proof")
    f["proof_seq"] = int(link.find_element(By.XPATH, "ancestor::div[contains(@class, 'entry')]")
                         .get_attribute("data-seq"))
    f["proof_file"] = download(d, link, downloads, "ledger-entry-", ".json")
    walk.step()

    # withdrawing one source: the bank
    walk.go("/m/consents")
    f["consented"] = [i.get_attribute("value") for i in d.find_elements(By.CSS_SELECTOR, "input[name=source]")]
    walk.tour("consents")
    walk.click(d.find_element(By.XPATH, "//form[input[@name='source' and @value='bank']]//button"))
    f["withdrawn_at"] = walk.path()
    f["withdrawn_notice"] = text_of(d, "#withdrawn")
    f["still_consented"] = [i.get_attribute("value") for i in d.find_elements(By.CSS_SELECTOR, "input[name=source]")]
    f["bank_item"] = next((li.text for li in d.find_elements(By.CSS_SELECTOR, ".consent li")
                           if li.text.startswith(SOURCE_NAMES["bank"][1])), None)
    walk.tour("consents-withdrawn")
    with session() as s:
        f["revocations"] = [(r.person_ref, r.source) for r in s.scalars(select(Revocation))]
    return f


def test_the_resident_follows_the_result_the_grant_their_data_and_withdraws(followed, signed):
    f = followed
    spouse = signed["members"][1]
    assert f["stage"] == "published"
    assert f["answer"] and f["reasons"] and all(r.strip() for r in f["reasons"])
    assert f["answer_line"] == f"{TEXT['screening'][1]}: {ANSWER_NAMES[f['answer']][1]}"  # the spouse reads English
    assert f["source_lines"][0].startswith(f"{SOURCE_NAMES[next(iter(f['sources']))][1]}: ")
    assert set(f["sources"]) == set(ALL_SOURCES)

    assert f["grant_status"] == 201
    assert [(name, dl.get(TEXT["monthly_amount"][1])) for name, dl in f["grants"]] == [
        (PURPOSE_NAMES[PURPOSE][1], GRANT_YUAN)]

    assert {"consent.signed", "record.published"} <= set(f["entries"]) and f["proof_links"] == len(f["entries"])
    proof = json.loads(f["proof_file"].read_text("utf-8"))
    assert f["proof_file"].name == f"ledger-entry-{f['proof_seq']}-proof.json" and proof["seq"] == f["proof_seq"]
    check_proof(proof, verifier_key(keyring().public_key))  # holds against the centre's own key
    forged = dict(proof, entry=proof["entry"].replace('"', "'", 1))
    with pytest.raises(ValueError):
        check_proof(forged, verifier_key(keyring().public_key))
    assert not any(m.id_number in f["proof_file"].read_text("utf-8") for m in signed["members"])

    assert set(FINANCIAL_SOURCES) <= set(f["consented"]) and set(f["consented"]) == set(ALL_SOURCES)
    assert f["withdrawn_at"] == "/m/consents" and f["withdrawn_notice"] == TEXT["withdrawn_ok"][1]
    assert set(f["still_consented"]) == set(ALL_SOURCES) - {"bank"}
    assert f["bank_item"] == f"{SOURCE_NAMES['bank'][1]} {TEXT['withdrawn_member'][1]}"
    assert f["revocations"] == [(keyring().pseudonym(spouse.id_number), "bank")]


@pytest.fixture(scope="module")
def applied(followed, signed, walk, caseworker, household):
    """After ``followed`` (the spouse's session, a withdrawal to find among the messages): the spouse applies
    (naming the head), the caseworker accepts: a request with QR codes; the spouse's messages and applications
    afterwards."""
    d = walk.d
    head, spouse, _minor = signed["members"]
    f: dict = {}
    walk.go("/m/apply")
    walk.tour("apply")
    Select(d.find_element(By.ID, "programme")).select_by_value(APPLY_PROGRAMME)
    Select(d.find_element(By.ID, "division")).select_by_value(APPLY_DIVISION)
    Select(d.find_element(By.ID, "relation")).select_by_value("spouse")
    d.find_element(By.NAME, "name_1").send_keys(head.name)
    d.find_element(By.NAME, "id_1").send_keys(head.id_number)
    Select(d.find_element(By.NAME, "relation_1")).select_by_value("head")
    walk.click(d.find_element(By.ID, "submit-application"))
    f["applied_at"] = walk.path()
    f["applied_notice"] = text_of(d, "#applied")
    f["applications"] = [a.get_attribute("data-status") for a in d.find_elements(By.CSS_SELECTOR, ".application")]
    walk.tour("applied")

    walk.forget()
    console_sign_in(d, walk.base, caseworker)
    walk.go("/console/applications")
    cards = d.find_elements(By.CSS_SELECTOR, ".application")
    f["console_applications"] = [c.text for c in cards]
    walk.tour("console-applications", hidden=False)  # the department's own case: names and ID numbers, whole
    walk.click(d.find_element(By.XPATH, "//div[contains(@class, 'application')]"
                                        "//form[input[@name='decision' and @value='accept']]//button"))
    f["accepted_at"] = walk.path()
    f["new_invitations"] = invitations_shown(d)
    walk.tour("console-application-request")

    walk.forget()  # the spouse again: their messages, their application accepted, a new link to sign
    walk.go("/m/messages")
    f["messages_login"] = walk.provider_sign_in(household[1][spouse.id_number])
    f["messages_at"] = walk.path()
    f["messages"] = [li.get_attribute("data-kind") for li in d.find_elements(By.CSS_SELECTOR, "#messages li")]
    walk.tour("messages")
    walk.go("/m/apply")
    f["applications_after"] = [(a.get_attribute("data-status"), bool(a.find_elements(By.TAG_NAME, "a")))
                               for a in d.find_elements(By.CSS_SELECTOR, ".application")]
    walk.go("/m/")
    f["home_requests"] = len(d.find_elements(By.CSS_SELECTOR, ".request"))
    f["home_sign_links"] = [urlparse(a.get_attribute("href")).path
                            for a in d.find_elements(By.CSS_SELECTOR, ".request a.sign-link")]
    walk.tour("home-after")
    return f


def test_an_application_is_accepted_into_a_request_with_qr_codes(applied, signed):
    f = applied
    head, spouse, _minor = signed["members"]
    assert f["applied_at"] == "/m/apply" and f["applied_notice"] == TEXT["applied_ok"][1]  # still in English
    assert f["applications"] == ["pending"]
    assert len(f["console_applications"]) == 1
    assert spouse.name in f["console_applications"][0] and head.name in f["console_applications"][0]
    assert re.fullmatch(r"/console/requests/[0-9a-f]{32}", f["accepted_at"])
    new_id = f["accepted_at"].rsplit("/", 1)[1]
    links = {i.name: i.path for i in invitation_links(new_id, DEPARTMENT)}
    base = settings().api_url.rstrip("/")
    assert [i["link"] for i in f["new_invitations"]] == [base + links[spouse.name], base + links[head.name]]
    assert all(i["qr_path"] == qr_path(i["link"]) and i["qr_width"] >= 80 for i in f["new_invitations"])

    assert f["messages_login"]["option"] == f"{spouse.name} {mask_id(spouse.id_number)}"
    assert f["messages_at"] == "/m/messages"  # back where the spouse was going, after signing in
    assert {"sign.invited", "sign.complete", "result.published", "consent.withdrawn",
            "application.accepted"} <= set(f["messages"])
    assert f["applications_after"] == [("accepted", True)]
    assert f["home_requests"] == 2 and f["home_sign_links"] == [links[spouse.name]]


# -- 4: every page -----------------------------------------------------------------------------------------------------
TOURED = ["console-request-qr", "provider-login", "sign-own", "answered-already", "not-yours", "home", "sign-minor",
          "landing", "request-result", "assistance", "data", "consents", "consents-withdrawn", "apply", "applied",
          "console-applications", "console-application-request", "messages", "home-after"]
LOOKED = ["signed-own", "signed-minor", "signed-last"]  # answers to a form: both sizes, in the signer's language


def test_every_page_fits_a_phone_shows_no_whole_id_number_and_has_its_screenshots(applied, walk):
    assert not walk.problems, "\n".join(walk.problems)
    assert sorted(walk.shots) == sorted(TOURED + LOOKED)
    for name in TOURED:  # phone and desktop, Chinese and English, each a PNG
        assert sorted(walk.headings[name]) == [(s, lang) for s in ("desktop", "phone") for lang in ("en", "zh")], name
        assert walk.headings[name][("phone", "zh")] != walk.headings[name][("phone", "en")], name
        assert len({p.name for p in walk.shots[name]}) == 4 and all(p.stat().st_size > 0 for p in walk.shots[name])
    assert {lang for name in LOOKED for (_size, lang) in walk.headings[name]} == {"zh", "en"}
    assert len(walk.urls) > 100 and not any(i in u.upper() for u in walk.urls for i in walk.ids)
