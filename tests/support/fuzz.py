"""Helpers shared by the fuzzers of tests/fuzz: the bounded settings, ID numbers to plant in inputs, the check that
no ID number of an input comes back in an error text, and arbitrary JSON-like values with the request documents'
keys in them.
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


# Arbitrary JSON-like values, with the keys of request and authorization documents among their keys.
KEYS = ["department", "purpose", "case_ref", "sources", "members", "authorization", "id_number", "name",
        "relation", "valid_from", "valid_until", "recheck_interval_days", "data_life_days", "consents",
        "evidence_sha256", "guardian_id_number", "financial_consent"]

MOMENTS = st.one_of(
    st.sampled_from([
        "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00+00:01", "0001-01-01T00:00:00-14:00",
        "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59.999999-00:01", "9999-12-31T23:59:59+14:00",
        "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "0001-01-01", "9999-12-31T23:59:59",
        "2026-02-30T00:00:00+08:00", "2026-01-01T00:00:00+24:00", "2026-01-01T25:00:00Z", "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00\x00+08:00", "2026-01-01T00:00:00+08:00\n", "+002026-01-01T00:00:00+08:00",
        "２０２６-01-01T00:00:00+08:00", "10000-01-01T00:00:00+00:00", "",
    ]),
    st.builds(lambda moment, offset: moment.replace(tzinfo=offset).isoformat(), st.datetimes(),
              st.timedeltas(-dt.timedelta(hours=23, minutes=59), dt.timedelta(hours=23, minutes=59))
              .map(dt.timezone)),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([0, -1, 3650, 3651, 2**63, -(2**63), 10**400]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), id_numbers(), MOMENTS,
    st.sampled_from(["", " ", "\x00", "a\x00b", "MZ-210302\n", "MZ-210302\x00", "dibao", "head", "household",
                     "bank", "0" * 64, "A" * 64, "0" * 64 + "\n", "x" * 70_000, "\ud800", "🂡" * 65]),
)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5)),
    max_leaves=20)
