"""The federation tests, like the connector tests, start each test with every circuit breaker closed."""

from __future__ import annotations

from tests.connectors.conftest import fresh_connectors  # noqa: F401  (autouse)
