"""A caseworker follows a request in a real browser, from received to published, as the app's own worker runs it
(hub.services.worker, started by the app's lifespan under uvicorn: no scheduler, no run_inline from the test). The
page reloads itself (a meta refresh: no script) until the record is published, then links it. At the desktop size and
a phone's, in Chinese and in English; a screenshot of each step.

The worker is held at two gates the test opens (before it claims, before it runs the stages), so each stage is seen
for certain, not by luck of timing. The module has a store of its own: the worker claims whatever is received."""

from __future__ import annotations

import threading
from urllib.parse import urlparse

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from hub.services import worker as worker_module
from hub.services.clients import create_client
from hub.services.requests import create, trigger_verification
from hub.stages import pipeline
from tests.support.console import DESKTOP, PHONE, WAIT, follow
from tests.support.households import ALL_SOURCES, sample

DEPARTMENT = "MZ-210302"
K = 3


@pytest.fixture(scope="module", autouse=True)
def own_store(module_store):
    """The module's own store (conftest), with the app's worker on and no scheduler."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("HUB_AIRFLOW_URL", raising=False)
        mp.delenv("HUB_INLINE_WORKER", raising=False)
        yield module_store


@pytest.fixture(scope="module")
def caseworker(own_store):
    client, token = create_client("follow caseworker", "department", DEPARTMENT)
    return client.id, token


@pytest.fixture
def gates(monkeypatch):
    """Two gates the worker waits at: ``claim`` before it claims a request, ``run`` before it runs its stages."""
    claim, run = threading.Event(), threading.Event()
    real_claim, real_run = worker_module.Worker.claim, pipeline.run_inline

    def gated_claim(self, request_id=None, **kw):
        claim.wait(120)
        return real_claim(self, request_id, **kw)

    def gated_run(request_id, **kw):
        run.wait(120)
        return real_run(request_id, **kw)

    monkeypatch.setattr(worker_module.Worker, "claim", gated_claim)
    monkeypatch.setattr(pipeline, "run_inline", gated_run)
    try:
        yield {"claim": claim, "run": run}
    finally:
        claim.set()
        run.set()


def _stage(driver) -> str | None:
    try:
        return driver.find_element(By.ID, "stage").get_attribute("data-stage")
    except WebDriverException:  # the page is being reloaded
        return None


def _until_stage(driver, stage: str, timeout: float = 60) -> None:
    """Wait, without touching the page, until its own reloads show ``stage``."""
    WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(
        lambda d: _stage(d) == stage and d.execute_script("return document.readyState") == "complete")


def _refreshes(driver) -> bool:
    return bool(driver.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]'))


def _fits(driver, width: int) -> dict:
    return driver.execute_script("""
        const out = [];
        for (const el of document.querySelectorAll('main *')) {
          const r = el.getBoundingClientRect();
          if (r.right > arguments[0] + 1 && !el.closest('.scroll')) out.push(el.tagName + '#' + el.id);
        }
        return {scroll: document.documentElement.scrollWidth, offenders: out.slice(0, 8)};""", width)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_caseworker_watches_a_request_go_from_received_to_published(live_server, agencies, driver, shot, gates,
                                                                     caseworker, lang, size):
    client_id, token = caseworker
    base, tag = live_server.url, f"follow-{lang}-{'desktop' if size == DESKTOP else 'phone'}"
    driver.get(base + "/console/login")
    driver.delete_all_cookies()
    driver.get(base + f"/console/login?lang={lang}")
    WebDriverWait(driver, WAIT).until(EC.visibility_of_element_located((By.ID, "token"))).send_keys(token)
    follow(driver, driver.find_element(By.ID, "signin"))
    assert urlparse(driver.current_url).path == "/console/"
    if size == PHONE:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": True})
    try:
        # a request made as the console's forms make it (another page's step), handed to the worker
        rid = create(sample(K, sources=list(ALL_SOURCES), department=DEPARTMENT), department=DEPARTMENT,
                     client_id=client_id)
        assert trigger_verification(rid) is None  # no scheduler: the app's worker takes it
        driver.get(base + f"/console/requests/{rid}?lang={lang}")
        _until_stage(driver, "waiting", WAIT)
        assert _refreshes(driver) and not driver.find_elements(By.ID, "read-record")
        assert driver.find_element(By.ID, "request-status").get_attribute("data-status") == "received"
        rows = driver.find_elements(By.CSS_SELECTOR, "#source-status tbody tr")
        assert len(rows) == len(ALL_SOURCES) and {r.get_attribute("data-step") for r in rows} == {"waiting"}
        said = driver.find_element(By.ID, "next").text
        assert ("worker starts asking" in said) if lang == "en" else ("核对进程将在几秒内开始" in said)
        if size == PHONE:
            fit = _fits(driver, PHONE[0])
            assert fit["scroll"] <= PHONE[0] + 1 and fit["offenders"] == [], fit
        shot(f"{tag}-1-received")

        gates["claim"].set()  # the worker claims it, and waits before the stages
        _until_stage(driver, "asking")
        assert _refreshes(driver)
        assert driver.find_element(By.ID, "request-status").get_attribute("data-status") == "running"
        shot(f"{tag}-2-asking")

        gates["run"].set()  # the stages run; the page follows by its own reloads
        _until_stage(driver, "published")
        assert not _refreshes(driver)
        steps = {r.get_attribute("data-source"): r.get_attribute("data-step")
                 for r in driver.find_elements(By.CSS_SELECTOR, "#source-status tbody tr")}
        assert set(steps) == set(ALL_SOURCES) and set(steps.values()) <= {"checked", "incomplete", "refused"}
        assert steps["household"] == "checked"
        assert driver.find_elements(By.CSS_SELECTOR, "#request-screening td.answer")
        main = driver.find_element(By.TAG_NAME, "main").text
        assert ("Record published" in main) if lang == "en" else ("核对报告已出具" in main)
        if size == PHONE:
            fit = _fits(driver, PHONE[0])
            assert fit["scroll"] <= PHONE[0] + 1 and fit["offenders"] == [], fit
        shot(f"{tag}-3-published")

        follow(driver, driver.find_element(By.ID, "read-record"))
        WebDriverWait(driver, WAIT).until(EC.presence_of_element_located((By.ID, "screening")))
        assert urlparse(driver.current_url).path.startswith("/console/households/")
        shot(f"{tag}-4-record")
    finally:
        if size == PHONE:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
