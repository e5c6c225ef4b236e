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


def download(driver, button, folder: Path, prefix: str, suffix: str = ".csv") -> Path:
    """Click the download button or link ``button`` (its id, or the element) and wait for the new file
    ``<prefix>*<suffix>`` in ``folder``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    before = set(folder.iterdir())
    (driver.find_element(By.ID, button) if isinstance(button, str) else button).click()

    def downloaded(_driver) -> Path | None:
        done = [p for p in set(folder.iterdir()) - before
                if p.suffix == suffix and p.name.startswith(prefix) and p.stat().st_size > 0]
        return done[0] if done else None

    return WebDriverWait(driver, WAIT).until(downloaded, f"no {prefix}*{suffix} was downloaded")


# what assert_readable measures, in the page: the elements that stick out of the viewport, and the visible texts and
# text boxes squeezed narrower than 4 characters (a text shorter than that: narrower than itself, i.e. wrapped)
_READABILITY = """
const vw = document.documentElement.clientWidth, wide = [], narrow = [];
const canvas = document.createElement('canvas').getContext('2d');
const BOXES = new Set(['text', 'number', 'search', 'email', 'tel', 'url', 'password', 'date', '']);
function name(el) {
  return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.name ? '[name=' + el.name + ']' : '')
      + (typeof el.className === 'string' && el.className ? '.' + el.className.trim().replace(/\\s+/g, '.') : '');
}
function visible(el, r) {
  if (r.width <= 1 || r.height <= 1) return false;
  const s = getComputedStyle(el);
  return s.visibility !== 'hidden' && s.display !== 'none' && parseFloat(s.opacity) > 0;
}
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (!visible(el, r)) continue;
  if (r.width > vw + 1 || r.right > vw + 1 || r.left < -1)
    wide.push(name(el) + ' left=' + Math.round(r.left) + ' right=' + Math.round(r.right) + ' viewport=' + vw);
  const s = getComputedStyle(el), size = parseFloat(s.fontSize);
  const box = el.tagName === 'TEXTAREA' || el.tagName === 'SELECT'
      || (el.tagName === 'INPUT' && BOXES.has((el.getAttribute('type') || '').toLowerCase()));
  if (box) {
    const inner = el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
    if (inner < 4 * size - 1) narrow.push(name(el) + ' box ' + Math.round(inner) + 'px < 4 characters');
    continue;
  }
  canvas.font = s.fontStyle + ' ' + s.fontWeight + ' ' + s.fontSize + ' ' + s.fontFamily;
  for (const node of el.childNodes) {
    if (node.nodeType !== Node.TEXT_NODE) continue;
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    if (!text) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const lines = Array.from(range.getClientRects()).filter(q => q.width > 0);
    if (lines.length < 2) continue;  // on one line: as wide as it needs
    const widest = Math.max(...lines.map(q => q.width));
    const need = canvas.measureText(Array.from(text).slice(0, 4).join('')).width;
    if (widest < need - 1)
      narrow.push(name(el) + ' "' + Array.from(text).slice(0, 12).join('') + '" in lines of ' + Math.round(widest)
                  + 'px < ' + Math.round(need) + 'px');
  }
}
return {viewport: vw, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 10),
        narrow: narrow.slice(0, 10)};
"""


def readability(driver) -> dict:
    """The current page's measures (see assert_readable): the viewport's width, the document's, and the offenders."""
    return driver.execute_script("return (function(){" + _READABILITY + "})();")


def assert_readable(driver, what: str = "page") -> None:
    """Nothing cut off or squeezed on the current page at the window's size: no visible element wider than the
    viewport or sticking out of it, no visible text wrapped into lines narrower than 4 characters (one character a
    line), no text box (input, select, textarea) narrower than 4 characters (4 em of its own font)."""
    m = readability(driver)
    assert m["scroll"] <= m["viewport"] + 1 and not m["wide"] and not m["narrow"], (what, m)
