"""Atheris (coverage-guided, libFuzzer) harness for the hub's reading of agency answers.

    python -m tests.fuzz.atheris_wire -runs=100000 [corpus-dir]

The first byte picks the contract (one of the eleven), the second the headers; the rest is the answer body. It
runs what a connector runs (parse_answer, then from_wire on every row): BadAnswer is the only exception allowed,
and neither it nor its traceback may hold an ID number of the input. tests/fuzz/test_wire.py runs it for a
bounded number of runs, in a subprocess (libFuzzer ends the process when it is done).
"""

from __future__ import annotations

import sys
import traceback

import atheris

with atheris.instrument_imports():
    from schemas.contracts import SPECS, from_wire
    from connectors.wire import BadAnswer, parse_answer

from tests.support.fuzz import assert_no_ids

KEYS = list(SPECS)
HEADERS = [{}, {"X-Total-Pages": "2"}, {"X-Total-Pages": "x"}, {"X-Total-Pages": "²"}, {"X-Total-Pages": "9" * 5000},
           {"X-Total-Pages": "-1"}, {"X-Total-Pages": "1e400"}]


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    spec = SPECS[KEYS[data[0] % len(KEYS)]]
    headers, body = HEADERS[data[1] % len(HEADERS)], data[2:]
    try:
        answer = parse_answer(spec, body, headers)
    except BadAnswer as exc:
        assert_no_ids(str(exc) + "".join(traceback.format_exception(exc)), body)
        return
    set(answer.not_found)
    for row in answer.rows:
        from_wire(spec, row)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
