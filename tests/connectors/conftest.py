"""Helpers for the connector tests: Allow decisions made by the real gate, connectors with a fast policy, and no
connector state carried from one test to another."""

from __future__ import annotations

import pytest

from connectors import registry
from connectors.transport import BREAKERS
from tests.support.connectors import DEPARTMENT, FAST, NOW, allows_for  # noqa: F401  (moved to tests/support)


@pytest.fixture(autouse=True)
def fresh_connectors():
    """Every circuit breaker closed and no agencies' index remembered, before and after each test: a test that opens
    an agency's circuit (or reads an index at an address another server reuses) affects no other, in any order."""
    BREAKERS.reset()
    registry.reset()
    yield
    BREAKERS.reset()
    registry.reset()
