"""Identifier shapes and the ids that sort by when they were made."""

from __future__ import annotations

import re
import time

from core.ids import HEX32, ordered_id, time_prefix

AT = 1_780_000_000_123_456_789  # a moment in 2026, ns


def test_an_ordered_id_is_a_request_shaped_id_that_sorts_by_its_millisecond_and_is_drawn_within_it():
    first, later = ordered_id(AT), ordered_id(AT + 1_000_000)  # one millisecond apart
    assert re.fullmatch(HEX32, first) and re.fullmatch(HEX32, later)
    assert first[:12] == f"{AT // 1_000_000:012x}" == time_prefix(AT) and first < later
    assert len({ordered_id(AT) for _ in range(1000)}) == 1000  # 80 random bits after the time


def test_the_time_prefix_is_the_clock_s_and_keeps_its_width_for_thousands_of_years():
    before = f"{time.time_ns() // 1_000_000:012x}"
    assert before <= time_prefix() <= ordered_id()[:12] <= f"{time.time_ns() // 1_000_000:012x}"
    year_9000 = (9000 - 1970) * 365 * 86_400 * 10**9
    assert len(time_prefix(year_9000)) == 12 and time_prefix(year_9000) > time_prefix(AT)
