"""The fuzzers' hypothesis settings: the profile "ci" keeps every test of this folder bounded and repeatable.

derandomize=True: the same examples on every run (a CI failure replays locally); no example database (nothing
written under .hypothesis/); no deadline (the machine is shared with benchmarks). HUB_FUZZ_EXAMPLES raises the
number of examples for a longer local run, e.g. HUB_FUZZ_EXAMPLES=5000 pytest tests/fuzz; each test takes its
share of it (tests/support/fuzz.py: ci). Outside CI, HUB_FUZZ_RANDOM=1 draws new examples on every run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=not os.environ.get("HUB_FUZZ_RANDOM"),
    deadline=None,
    database=None,
    print_blob=True,
    max_examples=int(os.environ.get("HUB_FUZZ_EXAMPLES") or 200),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)
