"""Set-up of the residents' browser tests (test_browser.py): the console's (tests/hub/web/console/conftest.py), reused
as it is: headless Chromium (``driver``), its downloads folder and the ``shot`` fixture, with the screenshots in the
``residents`` subfolder of the artifacts folder (tests.support.console.artifacts_dir).

Only what no other module of this folder uses by that name is imported here: the console's module-scoped
``agencies``, its autouse ``module_store`` and ``live_server`` (which asks for that ``agencies``) would change
test_pages.py's set-up, so test_browser.py imports those into itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hub.web.console import conftest as console
from tests.hub.web.console.conftest import downloads, driver, shot  # noqa: F401 (fixtures of this folder)
from tests.support.console import artifacts_dir


def _folder() -> Path:
    return artifacts_dir() / "residents"


def pytest_terminal_summary(terminalreporter):
    mine = [p for p in console._shots if p.parent == _folder()]
    if mine:
        terminalreporter.write_line(f"residents' screenshots: {len(mine)} PNG files in {_folder()}")


@pytest.fixture(scope="module")
def shots_dir() -> Path:
    """The residents' screenshots go to the ``residents`` subfolder of the artifacts folder."""
    return _folder()
