"""What the console's browser tests share with their conftest: Debian's Chromium and its driver, window sizes, the
longest explicit wait, the screenshots' folder, and following a link or a form to the page it loads."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
DESKTOP = (1280, 900)
PHONE = (390, 844)
WAIT = 20  # seconds an explicit wait may take before the test fails


def artifacts_dir() -> Path:
    """HUB_TEST_ARTIFACTS, or var/test-artifacts/console in the repository (which git ignores)."""
    return Path(os.environ.get("HUB_TEST_ARTIFACTS") or REPO / "var" / "test-artifacts" / "console")


def follow(driver, element) -> None:
    """Click a link or a submit button and wait until the next page has replaced this one and has loaded (a
    ``driver.get`` right after a bare click can be overtaken by the click's own navigation)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    # while the old document unloads, a command may fail with a transient error ("document unloaded while waiting
    # for result", "target frame detached"): those count as "not yet"
    during_navigation = WebDriverWait(driver, WAIT, ignored_exceptions=(WebDriverException,))
    during_navigation.until(EC.staleness_of(old))
    during_navigation.until(lambda d: d.execute_script("return document.readyState") == "complete")
