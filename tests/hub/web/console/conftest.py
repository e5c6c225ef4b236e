"""Set-up of the console's browser tests: the hub's app served by uvicorn in a thread of the test process, the
simulated agencies, headless Chromium driven by Selenium, and a folder for the screenshots of each step.

Chromium and its driver are Debian's (/usr/bin/chromium, /usr/bin/chromedriver; `.ci/run` installs them). Set
HUB_SKIP_BROWSER=1 to skip these tests; HUB_TEST_ARTIFACTS names the screenshots' folder (default
var/test-artifacts/console in the repository, which git ignores).
"""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.console import CHROMEDRIVER, CHROMIUM, DESKTOP, WAIT, artifacts_dir

_shots: list[Path] = []


def pytest_terminal_summary(terminalreporter):
    mine = [p for p in _shots if p.parent == artifacts_dir()]  # other folders' (shots_dir) are their conftest's
    if mine:
        terminalreporter.write_line(f"console screenshots: {len(mine)} PNG files in {artifacts_dir()}")


class LiveServer:
    """create_app() under uvicorn on a free loopback port, in a daemon thread of this process."""

    def __init__(self):
        import uvicorn

        from hub.web.app import create_app

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(), log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True,
                                        name="console-uvicorn")

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + WAIT
        while True:  # poll /health until it answers
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the hub's API did not answer on {self.url}/health") from None
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=60)  # the app's worker finishes the run in progress first
        self._sock.close()


@pytest.fixture(scope="module", autouse=True)
def module_store(tmp_path_factory):
    """Each module of the console's tests on a migrated SQLite store of its own (HUB_DATABASE_URL, set before its
    live server, tokens and households are made): the app's own worker (hub.services.worker) runs in the live server
    and takes every request left received in its store, so it must find this module's requests only, never the
    session's, and nothing it does outlives the module's store."""
    from core.store import engine, upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('console-store') / 'store.db'}"
    upgrade(url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUB_DATABASE_URL", url)
        yield url
    engine(url).dispose()


@pytest.fixture(scope="module")
def agencies():
    """The simulated agencies (no faults), pointed at by HUB_AGENCIES_URL for the whole module."""
    from tests.support.servers import serve_agencies

    yield from serve_agencies("none")


@pytest.fixture(scope="module")
def live_server(agencies):
    server = LiveServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(downloads):
    """Headless Chromium (Debian's), with downloads going to `downloads` without asking."""
    if os.environ.get("HUB_SKIP_BROWSER") == "1":
        pytest.skip("HUB_SKIP_BROWSER=1: the console's browser tests are skipped")
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: the console's browser tests need Debian's Chromium and its "
                    "driver, which .ci/run installs (apt-get install chromium chromium-driver); "
                    "set HUB_SKIP_BROWSER=1 to skip these tests", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars",
                f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--lang=zh-CN", "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "download.directory_upgrade": True, "safebrowsing.enabled": False})
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    d.set_page_load_timeout(WAIT)
    try:
        d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        yield d
    finally:
        d.quit()


@pytest.fixture(scope="module")
def shots_dir() -> Path:
    """The screenshots' folder: the artifacts folder (another folder's conftest that imports ``shot`` overrides
    this fixture with a folder of its own)."""
    return artifacts_dir()


@pytest.fixture(scope="module")
def shot(driver, shots_dir):
    """shot(name): a full-page PNG of the current page in ``shots_dir``; asserts it was written."""
    folder = shots_dir
    folder.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = folder / f"{name}.png"
        path.unlink(missing_ok=True)
        data = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(data["data"]))
        assert path.is_file() and path.stat().st_size > 0, path
        _shots.append(path)
        return path

    return take
