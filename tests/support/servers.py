"""Servers the tests start in-process: the simulated agencies pointed at by HUB_AGENCIES_URL, and the API without
rate limits."""

from __future__ import annotations

import os

import pytest


def serve_agencies(faults: str):
    """A generator for a fixture (``yield from serve_agencies("none")``): every simulated agency on an ephemeral
    loopback port with the fault profile ``faults``, pointed at by HUB_AGENCIES_URL until the generator closes."""
    from agencies.server import AgencyServer

    server = AgencyServer.from_hub_home(households=50, seed=7, faults=faults).start()
    old = os.environ["HUB_AGENCIES_URL"]
    os.environ["HUB_AGENCIES_URL"] = server.url
    try:
        yield server
    finally:
        os.environ["HUB_AGENCIES_URL"] = old
        server.stop()


def rate_limits_off(*unset: str):
    """For a module's autouse fixture: HUB_API_RATE=0, so every app made meanwhile (hub.web.app.create_app, whose
    limiter HUB_API_RATE sets) has no rate limits, and the variables named unset; restored afterwards."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HUB_API_RATE", "0")
    for name in unset:
        mp.delenv(name, raising=False)
    yield
    mp.undo()
