"""Request documents (hub.stages.intake) and authorization documents (consent.authorizations) under hostile input, and the
reader of the JSON text they come in (core.documents).

Arbitrary JSON-like values, and a valid sample request (agencies.requests.sample_request) with keys dropped,
values of the wrong type, huge strings, far-past and far-future moments with extreme offsets, NUL characters,
other people's ID numbers. A valid document is accepted and stored; an invalid one is refused with InvalidRequest
whose problems name fields (never an ID number of the input); nothing else is ever raised. What is stored is
stored on SQLite and on PostgreSQL (``database``). Arbitrary text and bytes, and documents nested to any depth, are
read or refused with DocumentError, never anything else (a RecursionError least of all).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from agencies.requests import sample_request
from consent.authorizations import check_authorization
from core.documents import MAX_DEPTH, DocumentError, nesting_depth, read_document
from hub.stages.intake import InvalidRequest, check_request, create_request
from schemas.sources import SOURCE_KEYS
from tests.support.fuzz import JSON_LIKE, KEYS, MOMENTS, assert_no_ids, ci, id_numbers, paths as _paths

SOURCES = ["household", "tax", "real_estate", "bank", "securities"]  # with financial ones: their separate consent
FIELD = re.compile(r"^(the request|department|purpose|case_ref|sources|members|authorization)\b")


def sample(**kw) -> dict:
    return sample_request(seed=7, households=50, k=3, sources=SOURCES, **kw)


SAMPLE = sample()


def _retype(value):
    """The same value as another JSON type."""
    if isinstance(value, str):
        return int(value) if value.isdigit() else [value]
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values())
    return value


@st.composite
def mutated(draw) -> dict:
    """The valid sample with up to four mutations, each at a path of the document."""
    doc = copy.deepcopy(SAMPLE)
    member_ids = [m["id_number"] for m in SAMPLE["members"]]
    for _ in range(draw(st.integers(0, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        value = parent[last]
        op = draw(st.sampled_from(["drop", "replace", "replace", "retype", "nul", "case", "other_member",
                                   "moment", "huge", "digits"]))
        if op == "drop":
            del parent[last]
            continue
        if op == "replace":
            new = draw(JSON_LIKE)
        elif op == "retype":
            new = _retype(value)
        elif op == "nul":
            new = (value[:1] + "\x00" + value[1:]) if isinstance(value, str) else "\x00"
        elif op == "case":
            new = value.lower() if isinstance(value, str) else value
        elif op == "other_member":
            new = draw(st.sampled_from(member_ids))
        elif op == "digits":  # digits that are not ASCII: str.isdigit() says yes, int() may say no
            digits = draw(st.sampled_from(["０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "²²²²²²²²²²"]))
            new = value.translate(str.maketrans("0123456789", digits)) if isinstance(value, str) else value
        elif op == "moment":
            new = draw(MOMENTS)
        else:
            new = (value if isinstance(value, str) else "x")[:100] * draw(st.sampled_from([100, 5000]))
        parent[last] = new
    return doc


def _field_problems(problems, doc) -> None:
    assert isinstance(problems, list) and problems
    assert all(isinstance(p, str) and FIELD.match(p) for p in problems), problems
    assert_no_ids(" ".join(problems), doc, SAMPLE)


def submit(doc) -> None:
    """create_request: stored when valid, InvalidRequest naming fields when not; nothing else."""
    expected = check_request(copy.deepcopy(doc))
    try:
        request_id = create_request(doc)
    except InvalidRequest as exc:
        assert exc.problems == expected
        _field_problems(exc.problems, doc)
        assert_no_ids(str(exc), doc)
    else:
        assert not expected, expected
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)


def test_the_sample_is_accepted(database):
    assert check_request(copy.deepcopy(SAMPLE)) == []
    submit(copy.deepcopy(SAMPLE))


@ci(0.5)
@given(doc=JSON_LIKE)
def test_arbitrary_documents_are_refused_by_field(doc, database):
    submit(doc)


@ci(0.5)
@given(doc=st.fixed_dictionaries({}, optional={k: JSON_LIKE for k in KEYS[:6]}))
def test_documents_with_the_right_keys_and_any_values_are_refused_by_field(doc, database):
    submit(doc)


@ci()
@given(doc=mutated())
@example(doc={**SAMPLE, "purpose": ["dibao"]})
@example(doc={**SAMPLE, "members": [{**SAMPLE["members"][0], "relation": {"head": 1}}]})
@example(doc={**SAMPLE, "department": "MZ-210302\n"})
@example(doc={**SAMPLE, "department": SAMPLE["members"][0]["id_number"]})
@example(doc={**SAMPLE, "case_ref": "DEMO\x00"})
@example(doc={**SAMPLE, "authorization": {**SAMPLE["authorization"], "valid_from": "0001-01-01T00:00:00+14:00"}})
@example(doc={**SAMPLE, "authorization": {**SAMPLE["authorization"], "valid_until": "9999-12-31T23:59:59-14:00"}})
@example(doc={**SAMPLE, "authorization": {**SAMPLE["authorization"], "valid_from": 1764547200}})
@example(doc={**SAMPLE, "authorization": {**SAMPLE["authorization"], "recheck_interval_days": "90"}})
@example(doc={**SAMPLE, "authorization": {**SAMPLE["authorization"], "data_life_days": True}})
def test_mutations_of_a_valid_request_are_accepted_or_refused_by_field(doc, database):
    submit(doc)


@ci(0.5)
@given(auth=JSON_LIKE, ids=st.lists(id_numbers(), max_size=3))
def test_arbitrary_authorizations_are_problems_by_field(auth, ids):
    problems = check_authorization(auth, ids, SOURCE_KEYS)
    assert all(isinstance(p, str) and p.startswith("authorization") for p in problems)
    assert_no_ids(" ".join(problems), auth, ids)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                    "0001-01-01T00:00:00+00:01"])
@pytest.mark.parametrize("key", ["valid_from", "valid_until"])
def test_moments_without_a_utc_equivalent_are_a_problem(key, moment):
    """Once an OverflowError out of parse_moment."""
    doc = copy.deepcopy(SAMPLE)
    doc["authorization"][key] = moment
    problems = check_request(doc)
    assert any(p.startswith(f"authorization.{key}") for p in problems), problems


def test_an_id_number_born_centuries_ahead_is_no_crash(database):
    """Its check character can be right; adult_from once overflowed on it. It is refused: nobody is born yet."""
    far = _born(dt.date(9999, 12, 31))
    doc = copy.deepcopy(SAMPLE)
    doc["members"][0]["id_number"] = far
    doc["authorization"]["consents"][0]["id_number"] = far
    submit(doc)
    assert "members[0].id_number: its birth date is in the future" in check_request(doc)


def _born(day: dt.date, area: str = "210302", seq: str = "001") -> str:
    """An ID number of someone born on ``day``, with its right check character."""
    from schemas.codes import id_check_char

    first17 = f"{area}{day:%Y%m%d}{seq}"
    return first17 + id_check_char(first17)


@ci(0.5)
@given(day=st.dates(dt.date.today() + dt.timedelta(days=2), dt.date(9999, 12, 31)), member=st.integers(0, 2))
@example(day=dt.date(2099, 1, 1), member=0)
def test_a_member_born_in_the_future_is_refused_by_field_whatever_the_check_character(day, member, database):
    doc = copy.deepcopy(SAMPLE)
    member = member % len(doc["members"])
    old, new = doc["members"][member]["id_number"], _born(day)
    doc = json.loads(json.dumps(doc).replace(old, new))  # the member, their consent and the consents they cover
    assert f"members[{member}].id_number: its birth date is in the future" in check_request(doc)
    submit(doc)


NOT_TEXT = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.just(1764547200),
                     st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@ci(0.5)
@given(key=st.sampled_from(["valid_from", "valid_until"]), value=NOT_TEXT)
def test_a_moment_that_is_not_text_is_a_problem_of_its_field(key, value):
    """A number is no moment (str(1764547200) once passed as one), nor a boolean, a list or an object."""
    doc = copy.deepcopy(SAMPLE)
    doc["authorization"][key] = value
    problems = check_authorization(doc["authorization"], [m["id_number"] for m in SAMPLE["members"]], SOURCE_KEYS)
    assert any(p.startswith(f"authorization.{key}: an ISO 8601 date-time as text, not ") for p in problems), problems


@ci(0.5)
@given(key=st.sampled_from(["recheck_interval_days", "data_life_days"]),
       value=st.one_of(st.booleans(), st.integers(1, 3650).map(str), st.integers(1, 3650).map(float),
                       st.just("90"), st.just(True), st.none(), st.lists(st.integers(1, 3650), max_size=1)))
def test_a_day_count_that_is_not_a_json_integer_is_a_problem_of_its_field(key, value):
    doc = copy.deepcopy(SAMPLE)
    doc["authorization"][key] = value
    problems = check_authorization(doc["authorization"], [m["id_number"] for m in SAMPLE["members"]], SOURCE_KEYS)
    assert f"authorization.{key}: whole days from 1 to 3650, a JSON integer (not text, a boolean or a fraction)" \
        in problems, problems


# -- the reader of JSON text (core.documents): the CLI's files and the API's bodies --------------------------------
def _depth(value) -> int:
    """How deep arrays and objects nest in a value, without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        v, above = stack.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, above + 1)
            stack.extend((c, above + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text(alphabet=st.sampled_from('[]{}"\\ab/\x00\n\u00e9\ud800:,'), max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=30)


WRAPS = [lambda v: [v], lambda v: {"k[": v}, lambda v: [1, "]", {"a": v}]]  # one level, one, two


@st.composite
def nested(draw):
    """A JSON value wrapped in arrays and objects to a depth around MAX_DEPTH."""
    value = draw(JSON_VALUES)
    pattern = draw(st.lists(st.sampled_from(WRAPS), min_size=1, max_size=3))
    for i in range(draw(st.integers(0, MAX_DEPTH + 4))):
        value = pattern[i % len(pattern)](value)
    return value


@ci()
@given(value=nested(), indent=st.sampled_from([None, 1]))
def test_a_document_is_read_when_it_nests_at_most_32_deep_and_refused_otherwise(value, indent):
    text = json.dumps(value, indent=indent, ensure_ascii=indent is None)
    assert nesting_depth(text) == nesting_depth(text.encode("utf-8", "surrogatepass")) == _depth(value)
    if _depth(value) <= MAX_DEPTH:
        assert read_document(text) == value
    else:
        with pytest.raises(DocumentError, match=f"^nested deeper than {MAX_DEPTH} levels"):
            read_document(text)


@ci()
@given(data=st.one_of(st.text(), st.binary(), st.text(alphabet=st.sampled_from('[]{}"\\ 1,:nul'), max_size=200)))
@example(data="[" * 100_000 + "]" * 100_000)  # json.loads alone: RecursionError
@example(data='{"a":' * 50_000 + "1" + "}" * 50_000)
@example(data="[" * 1_000_000)
@example(data='"' + "\\" * 100_000)
@example(data='\\"' * 100_000)
@example(data="1" * 5_000)
@example(data="[NaN]")
@example(data=b"\xff[]")
@example(data="\ufeff{}")
def test_any_text_is_a_document_or_a_document_error_and_nothing_else(data):
    try:
        read_document(data)
    except DocumentError as exc:
        assert str(exc) and "\n" not in str(exc)  # one line, for the CLI's one line on standard error
