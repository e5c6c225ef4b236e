"""What a validation suite is made of: named checks with a reason staff can read, and the column that says which of
the batches validated together a row belongs to. Every suite module (schemas.rules, household, coverage, cross,
remote_registry) builds on these; schemas.suite runs them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BATCH_KEY = "_batch"  # which of the batches validated together a row belongs to: uniqueness holds within a batch


@dataclass(frozen=True)
class Check:
    expectation: Any  # a great_expectations Expectation
    name: str
    reason: str
    must_pass: bool = False  # when it fails on any row, nothing of the batch may be used
