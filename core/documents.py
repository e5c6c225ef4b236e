"""The one reader of JSON documents from outside: request and authorization files of the CLI, bodies of the API.

``read_document`` takes UTF-8 JSON and gives the document, or raises DocumentError, whose message says what is wrong
with the text (where, never a value of it). Nothing else escapes, RecursionError included: the nesting is measured
before parsing, without recursion, and a document nested deeper than MAX_DEPTH arrays and objects is refused (a
request document nests five deep; Python's json module recurses once per level, down to a RecursionError).
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate

MAX_DEPTH = 32

# a JSON string with its escapes; one never closed runs to the end of the text (so every match attempt succeeds and
# the scan stays linear: a failed attempt at each quote would scan the rest of the text again)
_STRING = re.compile(r'"[^"\\]*(?:\\.?[^"\\]*)*(?:"|\Z)', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # an opening bracket +1, a closing one -1 (signed bytes)


class DocumentError(ValueError):
    """The text is not a JSON document the hub reads."""


class _Constant(ValueError):
    pass


def nesting_depth(text: str | bytes) -> int:
    """How deep arrays and objects nest in JSON ``text`` (brackets inside strings do not count), in C loops over the
    text (no recursion, no Python step per character). Bytes are read as Latin-1: UTF-8 encodes no bracket, quote or
    backslash inside another character, so the count is the same."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("latin-1")
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    steps = array("b", brackets.encode("ascii").translate(_STEP))
    return max(0, max(accumulate(steps), default=0))


def check_depth(text: str | bytes, max_depth: int = MAX_DEPTH) -> None:
    if nesting_depth(text) > max_depth:
        raise DocumentError(f"nested deeper than {max_depth} levels of arrays and objects")


def _no_constant(_name: str):
    raise _Constant(_name)


def read_document(data: str | bytes, *, max_depth: int = MAX_DEPTH):
    """The JSON document of ``data`` (UTF-8 when bytes); DocumentError when it is none, or nests too deep."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise DocumentError("not UTF-8 text") from None
    check_depth(data, max_depth)
    try:
        return json.loads(data, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except _Constant:
        raise DocumentError("not JSON: NaN and Infinity are no JSON numbers") from None
    except ValueError:  # an integer of more digits than int() reads (sys.get_int_max_str_digits)
        raise DocumentError("not JSON the hub reads: a number with too many digits") from None
    except RecursionError:  # not after check_depth; kept so that none can ever escape
        raise DocumentError(f"nested deeper than {max_depth} levels of arrays and objects") from None
