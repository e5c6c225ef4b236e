"""The Airflow client's wait for a run, against a real HTTP server on loopback that plays a busy API server: a poll
that is not answered in time or answered with a 5xx is asked again; an unknown run ends the wait at once."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hub.airflow.client import AirflowClient, AirflowError


class _Busy(BaseHTTPRequestHandler):
    script: list = []  # what each poll of a run's state gets, in turn: "slow", a status code, or a state
    polls: list = []

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - the handler's API
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(201, {"access_token": "t"})

    def do_GET(self):  # noqa: N802
        self.polls.append(self.path)
        step = self.script[min(len(self.polls), len(self.script)) - 1]
        if step == "slow":
            time.sleep(1.0)
            step = "running"
        if isinstance(step, int):
            self._send(step, {"detail": "busy" if step >= 500 else "no such run"})
        else:
            self._send(200, {"state": step})


@pytest.fixture
def airflow():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Busy.polls = []
    try:
        yield AirflowClient(f"http://127.0.0.1:{server.server_address[1]}", "admin", "pw", poll_timeout=0.3)
    finally:
        server.shutdown()
        server.server_close()


def test_a_poll_not_answered_in_time_or_answered_with_a_5xx_is_asked_again(airflow):
    _Busy.script = ["running", "slow", 503, 500, "running", "success"]
    assert airflow.wait("reverify_recipients", "manual__hub_1", timeout=30, interval=0.05) == "success"
    assert len(_Busy.polls) == 6
    assert all(p == "/api/v2/dags/reverify_recipients/dagRuns/manual__hub_1" for p in _Busy.polls)


def test_an_unknown_run_ends_the_wait_at_once(airflow):
    import requests

    _Busy.script = [404]
    with pytest.raises(requests.HTTPError):
        airflow.wait("reverify_recipients", "manual__hub_2", timeout=30, interval=0.05)
    assert len(_Busy.polls) == 1


def test_a_server_that_stays_busy_past_the_deadline_is_named_in_the_error(airflow):
    _Busy.script = ["running", 503]
    with pytest.raises(AirflowError, match=r"did not finish within 1 s \(the last poll: HTTP 503\)"):
        airflow.wait("reverify_recipients", "manual__hub_3", timeout=1, interval=0.05)
    assert len(_Busy.polls) > 2
