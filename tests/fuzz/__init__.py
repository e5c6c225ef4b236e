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

ID_LIKE_ANYWHERE = re.compile(r"(?=([0-9]{17}[0-9X]))")  # overlapping matches, on upper-cased text


def ci(share: float = 1.0) -> settings:
    """The "ci" profile (tests/fuzz/conftest.py) with ``share`` of its examples: slow targets (HTTP, the store)
    take fewer than pure parsers."""
    base = settings.get_profile("ci")
    return settings(base, max_examples=max(5, int(base.max_examples * share)))


@st.composite
def id_numbers(draw) -> str:
    """Resident ID numbers with a right check character (and, now and then, a wrong one, a lower-case x or an
    impossible birth date)."""
    area = draw(st.sampled_from(["210302", "210303", "210304", "210311", "210321", "210323", "210381", "110105"]))
    born = draw(st.dates(dt.date(1900, 1, 1), dt.date(2025, 12, 31))).strftime("%Y%m%d")
    if draw(st.integers(0, 19)) == 0:  # a birth date that is none (the check character can still be right)
        born = draw(st.sampled_from(["20251345", "20250230", "20230229", "00000101", "19490000", "99991231"]))
    first17 = f"{area}{born}{draw(st.integers(0, 999)):03d}"
    check = id_check_char(first17)
    if draw(st.integers(0, 9)) == 0:
        check = draw(st.sampled_from("0123456789X"))
    return first17 + (check.lower() if draw(st.integers(0, 9)) == 0 else check)


def _texts(value) -> str:
    """Every string inside a value (bytes read as Latin-1; nested lists and dicts, keys too), one per line."""
    out, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, bytes):
            out.append(v.decode("latin-1"))
            if len(v) % 2 == 0:  # and as UTF-16, in case the body was
                out.append(v.decode("utf-16-le", "replace"))
        elif isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
    return "\n".join(out).upper()


def assert_no_ids(text: str, *inputs) -> None:
    """No ID number of the inputs in an error text (in any case): every ID-number-like string of the text (a short
    one) is looked for in the inputs (which may be huge)."""
    candidates = {m.group(1) for m in ID_LIKE_ANYWHERE.finditer(text.upper())}
    if not candidates:
        return
    haystack = _texts(inputs)
    leaked = [c for c in candidates if c in haystack]
    assert not leaked, f"an ID number of the input is in the error text ({len(leaked)} leaked)"


def paths(value, prefix=()):
    """Every path into a JSON-like value (keys and list indexes), the value's own first."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, (*prefix, i))
