"""Servers the tests start in-process: the simulated agencies pointed at by HUB_AGENCIES_URL, and the API without
rate limits."""

from __future__ import annotations

import os

import pytest


def serve_agencies(faults: str, rates: dict | None = None):
    """A generator for a fixture (``yield from serve_agencies("none")``): every simulated agency on an ephemeral
    loopback port with the fault profile ``faults`` (and its ``rates``), pointed at by HUB_AGENCIES_URL until the
    generator closes."""
    from agencies.server import AgencyServer

    server = AgencyServer.from_hub_home(households=50, seed=7, faults=faults, fault_rates=rates).start()
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


def free_port() -> int:
    """A loopback port nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_api(env: dict, port: int, log, *args: str, timeout: float = 90):
    """``hub api --port PORT *args`` in a process of its own with exactly the environment ``env``, its output to the
    file ``log``; returned once /health answers (AssertionError with the log's end if it exits or does not answer)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    import requests

    hub = str(Path(sys.executable).parent / "hub")
    out = Path(log).open("wb")
    proc = subprocess.Popen([hub, "api", "--port", str(port), *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"hub api exited: {Path(log).read_text(errors='replace')[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("hub api did not start")
