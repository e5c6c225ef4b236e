"""The federation tests, like the connector tests, start each test with every circuit breaker closed.

test_client's tests share two hubs (module-scoped) and tell one story: a later one republishes Dalian's household
(the subscription), after which Dalian's latest record is no longer the one the first test compares with. They run
in the order of the file, whatever order pytest-randomly gave the session."""

from __future__ import annotations

from pathlib import Path

from tests.connectors.conftest import fresh_connectors  # noqa: F401  (autouse)

STORY = Path(__file__).with_name("test_client.py")


def pytest_collection_modifyitems(items):
    """This module's tests in file order, in the places the session's order gave them (a non-wrapper hook: it runs
    after pytest-randomly's shuffle)."""
    places = [i for i, item in enumerate(items) if item.path == STORY]
    ordered = sorted((items[i] for i in places), key=lambda item: item.location[1])
    for i, item in zip(places, ordered):
        items[i] = item
