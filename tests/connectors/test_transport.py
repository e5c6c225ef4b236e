"""connectors.transport on its own, against a scripted session (no agency): the failure table, retries, Retry-After,
the deadline, and circuit breakers that stay in the registry they were opened in."""

from __future__ import annotations

import dataclasses
import time

import pytest
import requests

from connectors.transport import (BREAKERS, Action, AgencyError, Breakers, Failure, Policy, Transport, classify,
                                  retry_after)
from tests.support.connectors import FAST

URL = "http://127.0.0.1:9/query"
BODY = b'{"ids": ["210302199001011234"]}'


class Scripted(requests.Session):
    """Answers each POST with the next step of its script: a status, (status, headers), or an exception to raise."""

    def __init__(self, *script):
        super().__init__()
        self.script, self.calls = list(script), 0

    def post(self, url, data=None, **kwargs):
        self.calls += 1
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        status, headers = step if isinstance(step, tuple) else (step, {})
        resp = requests.Response()
        resp.status_code, resp._content = status, b"{}"
        resp.headers.update(headers)
        return resp


def _transport(*script, policy: Policy = FAST, breakers: Breakers | None = None, address: str = URL) -> Transport:
    return Transport("tax", address, policy=policy, http=Scripted(*script), breakers=breakers or Breakers())


def test_every_failure_is_classified_by_the_table():
    assert classify("connection") == (Failure.UNREACHABLE, Action.RETRY)
    assert classify("timeout") == (Failure.TIMEOUT, Action.RETRY)
    assert classify(401) == classify(403) == (Failure.REFUSED, Action.FAIL)
    assert classify(429) == (Failure.RATE_LIMITED, Action.RETRY)
    assert classify(418) == (Failure.BAD_REQUEST, Action.FAIL)
    assert classify(503) == (Failure.SERVER_ERROR, Action.RETRY)


def test_a_refusal_is_not_retried_and_its_error_names_no_request():
    t = _transport(401)
    with pytest.raises(AgencyError) as exc:
        t.post(URL, BODY, {"X-Api-Key": "secret"})
    assert exc.value.failure is Failure.REFUSED and t.http.calls == 1
    assert str(exc.value) == "tax: REFUSED"


def test_server_errors_and_lost_connections_are_retried_until_answered():
    attempts = []
    t = _transport(503, requests.ConnectionError("reset"), requests.exceptions.ChunkedEncodingError("cut"), 200)
    resp = t.post(URL, BODY, lambda: {"X-Attempt": str(len(attempts))}, on_attempt=lambda: attempts.append(1))
    assert resp.status_code == 200 and t.http.calls == len(attempts) == 4
    assert t.breaker.failures == 0  # an answer closes the count again


def test_the_last_failure_is_raised_once_the_retries_are_spent():
    t = _transport(*[502] * (FAST.retries + 1))
    with pytest.raises(AgencyError) as exc:
        t.post(URL, BODY, {})
    assert exc.value.failure is Failure.SERVER_ERROR and t.http.calls == FAST.retries + 1


def test_retry_after_is_honoured_up_to_the_cap():
    assert retry_after("0.5", 30.0) == 0.5 and retry_after("120", 30.0) == 30.0 and retry_after("-3", 30.0) == 0.0
    assert retry_after(None, 30.0) == retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 30.0) == 1.0
    t = _transport((429, {"Retry-After": "0.3"}), 200, policy=dataclasses.replace(FAST, max_retry_after=0.3))
    t0 = time.monotonic()
    assert t.post(URL, BODY, {}).status_code == 200
    assert time.monotonic() - t0 >= 0.3 and t.http.calls == 2


def test_no_wait_goes_past_the_deadline():
    t = _transport((429, {"Retry-After": "5"}), 200, policy=dataclasses.replace(FAST, max_retry_after=5.0))
    t0 = time.monotonic()
    with pytest.raises(AgencyError) as exc:
        t.post(URL, BODY, {}, deadline=time.monotonic() + 1.0)
    assert exc.value.failure is Failure.DEADLINE and str(exc.value) == "tax: DEADLINE (after RATE_LIMITED)"
    assert time.monotonic() - t0 < 0.5 and t.http.calls == 1


def test_an_open_circuit_stays_in_the_breakers_it_was_opened_in():
    policy = dataclasses.replace(FAST, breaker_threshold=2, retries=5)
    mine = Breakers()
    first = _transport(requests.ConnectionError("down"), requests.ConnectionError("down"), policy=policy,
                       breakers=mine)
    with pytest.raises(AgencyError) as exc:
        first.post(URL, BODY, {})
    assert exc.value.failure is Failure.CIRCUIT_OPEN and first.http.calls == 2

    again = _transport(200, policy=policy, breakers=mine)  # the same address, the same breakers: not called
    with pytest.raises(AgencyError):
        again.post(URL, BODY, {})
    assert again.http.calls == 0

    elsewhere = Transport("tax", URL, policy=policy, http=Scripted(200))  # the process's breakers: closed
    assert elsewhere.post(URL, BODY, {}).status_code == 200 and elsewhere.breaker is not first.breaker


def test_reset_closes_every_breaker():
    policy = dataclasses.replace(FAST, breaker_threshold=1, retries=0)
    opened = Transport("tax", URL, policy=policy, http=Scripted(requests.ConnectionError("down")))
    with pytest.raises(AgencyError):
        opened.post(URL, BODY, {})
    assert not BREAKERS.of(URL, policy).allow()
    BREAKERS.reset()
    fresh = Transport("tax", URL, policy=policy, http=Scripted(200))
    assert fresh.post(URL, BODY, {}).status_code == 200


def test_a_label_goes_into_errors_and_redirects_are_followed_only_when_asked():
    class Redirects(Scripted):
        def post(self, url, data=None, **kwargs):
            self.followed = kwargs["allow_redirects"]
            return super().post(url, data=data, **kwargs)

    t = Transport("remote_registry", "dci:" + URL, policy=FAST, http=Redirects(403), breakers=Breakers(),
                  label="HUB-210200", follow_redirects=False)
    with pytest.raises(AgencyError) as exc:
        t.post(URL, BODY, {})
    assert str(exc.value) == "remote_registry: REFUSED (HUB-210200)" and t.http.followed is False
