"""Fuzzers of every parser of outside input (hypothesis; atheris for the agencies' wire formats).

Helpers shared by the fuzzers: the bounded settings, ID numbers to plant in inputs, and the check that no ID
number of an input comes back in an error text.
"""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import settings
from hypothesis import strategies as st

from schemas.codes import id_check_char

ID_LIKE = re.compile(r"[0-9]{17}[0-9Xx]")


def ci(share: float = 1.0) -> settings:
    """The "ci" profile (tests/fuzz/conftest.py) with ``share`` of its examples: slow targets (HTTP, the store)
    take fewer than pure parsers."""
    base = settings.get_profile("ci")
    return settings(base, max_examples=max(5, int(base.max_examples * share)))


@st.composite
def id_numbers(draw) -> str:
    """Resident ID numbers with a right check character (and, now and then, a wrong one or a lower-case x)."""
    area = draw(st.sampled_from(["210302", "210303", "210304", "210311", "210321", "210323", "210381", "110105"]))
    born = draw(st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31)))
    first17 = f"{area}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    check = id_check_char(first17)
    if draw(st.integers(0, 9)) == 0:
        check = draw(st.sampled_from("0123456789X"))
    return first17 + (check.lower() if draw(st.integers(0, 9)) == 0 else check)


def planted_ids(value) -> set[str]:
    """Every ID-number-like string inside a value (strings, bytes, nested lists and dicts)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, bytes):
            v = v.decode("latin-1")
        if isinstance(v, str):
            found.update(m.group(0).upper() for m in ID_LIKE.finditer(v))
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return found


def assert_no_ids(text: str, planted: set[str]) -> None:
    """No ID number of the input in an error text (in any case)."""
    upper = text.upper()
    leaked = [i for i in planted if i in upper]
    assert not leaked, f"an ID number of the input is in the error text ({len(leaked)} leaked)"
