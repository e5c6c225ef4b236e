"""/docs (Swagger UI) and /redoc (ReDoc) in headless Chromium as on an office intranet: the well-known CDNs are
blocked, every resource the page loads is on the hub's own origin, the page's policy is never violated, and the UI
actually renders the API (Swagger UI's operations with the record's example, ReDoc's menu and the record's schema).
Screenshots: api-docs-*.png in the artifacts folder."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.console import DESKTOP, PHONE, WAIT, artifacts_dir

CDNS = ["*cdn.jsdelivr.net*", "*unpkg.com*", "*fonts.googleapis.com*", "*fonts.gstatic.com*",
        "*fastapi.tiangolo.com*", "*cdn.redoc.ly*", "*cdnjs.cloudflare.com*"]
# collects the page's Content-Security-Policy violations from before its first script runs (injected by the
# browser's own protocol, so the page's policy does not apply to it)
WATCH = ("window.__violations = []; document.addEventListener('securitypolicyviolation', "
         "e => window.__violations.push(e.blockedURI + ' ' + e.violatedDirective));")


@pytest.fixture(scope="module")
def offline(driver):
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": CDNS})
    watch = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    yield driver
    driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": watch["identifier"]})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    driver.set_window_size(*DESKTOP)


def _loaded_from(driver) -> list[str]:
    return driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")


def _only_own_origin(driver, origin: str, wanted: list[str]) -> None:
    urls = _loaded_from(driver)
    foreign = [u for u in urls if not u.startswith(origin + "/") and not u.startswith(("data:", "blob:"))]
    assert not foreign, f"loaded from elsewhere: {foreign}"
    for path in wanted:
        assert origin + path in urls, f"{path} not loaded: {urls}"
    assert driver.execute_script("return window.__violations") == []


def test_swagger_ui_renders_every_operation_from_the_hubs_own_files(offline, live_server, shot):
    driver = offline
    driver.get(live_server.url + "/docs")
    wait = WebDriverWait(driver, WAIT)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 23)
    assert "Verification hub API" in driver.find_element(By.CSS_SELECTOR, ".info .title").text
    _only_own_origin(driver, live_server.url, ["/docs-static/swagger-ui-bundle.js", "/docs-static/swagger-ui.css",
                                               "/openapi.json"])
    shot("api-docs-swagger")

    # the record's operation: its answer's example shows the typed content (masked ID numbers, the screening)
    record = next(op for op in driver.find_elements(By.CSS_SELECTOR, ".opblock-get")
                  if op.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
                  == "/v1/households/{household_id}/record")
    record.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(lambda d: "id_number_masked" in record.text)
    assert "2103**********001X" in record.text
    assert "OWNS_VEHICLE" in record.text
    driver.execute_script("arguments[0].scrollIntoView()", record.find_element(By.CSS_SELECTOR, ".responses-wrapper"))
    shot("api-docs-swagger-record")
    assert driver.save_screenshot(str(artifacts_dir() / "api-docs-swagger-record-view.png"))  # the window alone

    driver.set_window_size(*PHONE)
    driver.get(live_server.url + "/docs")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 23)
    _only_own_origin(driver, live_server.url, ["/docs-static/swagger-ui-bundle.js"])
    shot("api-docs-swagger-phone")
    driver.set_window_size(*DESKTOP)


def test_redoc_renders_its_menu_and_the_record_schema_from_the_hubs_own_files(offline, live_server, shot):
    driver = offline
    driver.get(live_server.url + "/redoc")
    wait = WebDriverWait(driver, WAIT)
    try:
        wait.until(lambda d: "/v1/households/{household_id}/record" in d.find_element(By.TAG_NAME, "body").text)
    finally:
        shot("api-docs-redoc")
    menu = driver.find_element(By.CSS_SELECTOR, ".menu-content").text
    assert {"requests", "records", "assistance", "audit"} <= set(menu.split()), menu
    content = driver.find_element(By.CSS_SELECTOR, ".api-content").text
    # the record's answer: its schema's fields, and its example's values in the sample beside it
    assert "content_sha256" in content and "civil-affairs-assistance" in content and "Verification hub API" in content
    _only_own_origin(driver, live_server.url, ["/docs-static/redoc.standalone.js", "/openapi.json"])


def test_the_pages_name_only_their_own_origin_in_their_policy(live_server):
    import urllib.request

    for path in ("/docs", "/redoc"):
        with urllib.request.urlopen(live_server.url + path, timeout=WAIT) as resp:
            policy = resp.headers["Content-Security-Policy"]
            page = resp.read().decode()
        assert "default-src 'self'" in policy and "http" not in policy, path
        assert "http://" not in page and "https://" not in page, path  # no outside address at all
