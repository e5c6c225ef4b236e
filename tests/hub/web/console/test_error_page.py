"""The console's error page in Chromium, on a phone (390x844) and a desktop, in Chinese and English: a caseworker who
opens a staff page, a request that does not exist, or sends a form the hub cannot take, reads what happened in their
language and finds the way back, and nothing is wider than the phone's screen."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from hub.services.clients import create_client
from tests.support.console import DESKTOP, PHONE, WAIT, follow


@pytest.fixture(scope="module")
def caseworker() -> str:
    return create_client("error page caseworker", "department", "MZ-210302")[1]


def _path(driver) -> str:
    return urlparse(driver.current_url).path


def _error_page(driver, status: int) -> str:
    page = WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.ID, "error-page")))
    assert page.get_attribute("data-status") == str(status)
    text = driver.find_element(By.TAG_NAME, "body").text
    assert '{"' not in text and "Traceback" not in text and "detail" not in text
    return driver.find_element(By.ID, "error-title").text


def _fits(driver, width: int) -> None:
    """No element sticks out of the viewport, and no text box is narrower than 4 characters."""
    m = driver.execute_script("""
        const width = arguments[0], out = [];
        for (const el of document.querySelectorAll('body *')) {
          const r = el.getBoundingClientRect();
          if (r.right > width + 1) out.push(el.tagName + '#' + el.id + ' right=' + Math.round(r.right));
          const fs = parseFloat(getComputedStyle(el).fontSize);
          const text = el.textContent.trim(), em = /[\u4e00-\u9fff]/.test(text) ? 1 : 0.5;  // a character's width
          if (el.matches('p, li, h1, a') && text.length > 4 && r.width < 4 * em * fs)
            out.push(el.tagName + '#' + el.id + ' width=' + Math.round(r.width));
        }
        return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, out: out.slice(0, 8)};""",
                              width)
    assert m["inner"] == width and m["scroll"] <= width + 1 and not m["out"], m


def test_a_caseworker_meets_each_error_in_words_and_finds_the_way_back(driver, live_server, shot, caseworker):
    base = live_server.url
    driver.set_window_size(*PHONE)
    driver.get(base + "/console/login")
    driver.delete_all_cookies()
    driver.get(base + "/console/login?lang=zh")
    WebDriverWait(driver, WAIT).until(EC.visibility_of_element_located((By.ID, "token"))).send_keys(caseworker)
    follow(driver, driver.find_element(By.ID, "signin"))
    assert _path(driver) == "/console/"

    # a staff page: 403, in Chinese, on a phone; the way home
    driver.get(base + "/console/sources")
    assert _error_page(driver, 403) == "无权访问"
    assert "您当前的角色无权使用" in driver.find_element(By.ID, "error-message").text
    _fits(driver, PHONE[0])
    shot("error-403-zh-phone")
    follow(driver, driver.find_element(By.ID, "error-home"))
    assert _path(driver) == "/console/"

    # a form the hub cannot take: 422 names the field; back to the form
    driver.get(base + "/console/login")
    WebDriverWait(driver, WAIT).until(EC.visibility_of_element_located((By.ID, "token"))).send_keys("x" * 300)
    follow(driver, driver.find_element(By.ID, "signin"))
    assert _error_page(driver, 422) == "请修改以下内容"
    assert "访问令牌" in driver.find_element(By.ID, "error-fix").text and "x" * 300 not in driver.page_source
    _fits(driver, PHONE[0])
    shot("error-422-zh-phone")
    follow(driver, driver.find_element(By.ID, "error-back"))
    assert _path(driver) == "/console/login"

    # a request that does not exist: 404, in English, on a desktop; up to the list of requests
    driver.set_window_size(*DESKTOP)
    driver.get(base + "/console/requests/" + "0" * 32 + "?lang=en")
    assert _error_page(driver, 404) == "Not found"
    shot("error-404-en-desktop")
    driver.set_window_size(*PHONE)
    _fits(driver, PHONE[0])
    shot("error-404-en-phone")
    follow(driver, driver.find_element(By.ID, "error-back"))
    assert _path(driver) == "/console/requests"
    driver.set_window_size(*DESKTOP)
