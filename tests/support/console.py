"""What the console's browser tests share with their conftest: Debian's Chromium and its driver, window sizes, the
longest explicit wait, the screenshots' folder."""

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
