"""JSON text made by an encoder built once (core.crypto.json_encoder): the very text json.dumps writes, for
hashes, signatures and stored values alike."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import crypto


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_json_values, st.booleans(), st.booleans(), st.sampled_from([(", ", ": "), (",", ":")]))
def test_an_encoder_made_once_writes_the_text_json_dumps_writes(value, ensure_ascii, sort_keys, separators):
    options = {"ensure_ascii": ensure_ascii, "sort_keys": sort_keys, "separators": separators}
    assert crypto.json_encoder(**options)(value) == json.dumps(value, **options)


def test_canonical_json_is_the_sorted_compact_utf8_text_and_refuses_what_json_refuses():
    value = {"b": [1, 2.5, None, True, "张\n\u2028"], "a": {"z": 1e16, "y": 1.5e-05, "é": -0.0}}
    assert crypto.canonical_json(value) == json.dumps(value, sort_keys=True, ensure_ascii=False,
                                                      separators=(",", ":")).encode("utf-8")
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        crypto.canonical_json({"a": {1, 2}})
    with pytest.raises(TypeError):
        crypto.canonical_json({("a", 1): 1})
