"""Each fault profile of the simulated agencies gives the right outcome, and the agencies' counters prove where
retries stopped."""

from __future__ import annotations

import dataclasses
import time

import pytest

from agencies.population import households
from agencies.server import AgencyServer
from connectors.base import Failure
from connectors.registry import connector
from tests.support.connectors import FAST, allows_for

PEOPLE = [p.id_number for h in households(7, 50) for p in h.members]


@pytest.fixture
def serve():
    servers = []

    def start(faults: str, **rates) -> AgencyServer:
        server = AgencyServer.from_hub_home(households=50, seed=7, faults=faults, fault_rates=rates or None).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def _fetch(server, key, people=PEOPLE[:40], policy=FAST):
    allows, ids = allows_for(people, key)
    return connector(key, server.base_url(key), policy=policy).fetch(allows, ids, auth_ref="req-1")


def test_flaky_completes_after_retries_and_stops_retrying_once_answered(serve, caplog):
    import logging

    server = serve("flaky", flaky=0.5)
    with caplog.at_level(logging.DEBUG):
        result = _fetch(server, "bank", PEOPLE[:120])
    assert "retry" in caplog.text and not any(i in caplog.text for i in PEOPLE[:120])
    stats = server.stats()["bank"]
    assert result.status == "complete" and result.missing == 0
    assert stats["errors"] + stats["throttled"] > 0  # faults happened
    # every call either failed with an injected fault or was served; nothing was asked again once served
    assert stats["requests"] == stats["served"] + stats["errors"] + stats["throttled"] == result.calls
    assert stats["served"] == -(-120 // 50)


def test_429_waits_as_long_as_retry_after_says(serve):
    server = serve("flaky", flaky=0.6)
    t0 = time.monotonic()
    result = _fetch(server, "tax", PEOPLE[:20], dataclasses.replace(FAST, retries=8))
    elapsed = time.monotonic() - t0
    throttled = server.stats()["tax"]["throttled"]
    assert result.status == "complete"
    assert elapsed >= throttled * 1.0  # Retry-After: 1, honoured each time


def test_truncated_bodies_are_retried_until_whole(serve):
    server = serve("truncated", truncated=0.5)
    result = _fetch(server, "household", PEOPLE[:150])
    stats = server.stats()["household"]
    assert result.status == "complete" and len(result.rows) == 150
    assert stats["truncated"] >= 1 and stats["requests"] == result.calls == 2 + stats["truncated"]


def test_a_down_agency_is_unavailable_and_the_circuit_opens(serve):
    server = serve("down:tax")
    policy = dataclasses.replace(FAST, breaker_threshold=3, retries=5)
    first = _fetch(server, "tax", policy=policy)
    assert (first.status, first.reason) == ("unavailable", Failure.CIRCUIT_OPEN.value)
    assert first.calls == 3  # three refused connections opened the circuit; no fourth attempt
    t0 = time.monotonic()
    second = _fetch(server, "tax", policy=policy)
    assert second.reason == Failure.CIRCUIT_OPEN.value and second.calls == 0
    assert time.monotonic() - t0 < 0.5


def test_hanging_agency_times_out_within_the_total_bound(serve, monkeypatch):
    monkeypatch.setenv("HUB_AGENCIES_HANG_S", "5")
    server = serve("slow", hang=1.0)
    policy = dataclasses.replace(FAST, read_timeout=0.8, deadline=3.0)
    t0 = time.monotonic()
    result = _fetch(server, "securities", PEOPLE[:10], policy)
    elapsed = time.monotonic() - t0
    assert result.status == "unavailable" and result.reason in (Failure.TIMEOUT.value, Failure.DEADLINE.value)
    assert elapsed < policy.deadline + 1.0
    deadline = time.monotonic() + 3  # the last attempt may still be on its way into the agency's counters
    while server.stats()["securities"]["requests"] < result.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = server.stats()["securities"]
    assert stats["requests"] == result.calls >= 2 and stats["served"] == 0  # every attempt hung or timed out


def test_an_answer_in_the_wrong_encoding_is_a_bad_response_not_retried(serve):
    server = serve("dirty", row=0.0, response=1.0)
    result = _fetch(server, "provident_fund", PEOPLE[:10])
    assert (result.status, result.reason) == ("unavailable", Failure.BAD_RESPONSE.value)
    assert result.calls == 1 and server.stats()["provident_fund"]["requests"] == 1


def test_dirty_rows_are_read_as_they_came_for_validation_to_judge(serve):
    server = serve("dirty", row=0.2, response=0.0)
    result = _fetch(server, "household", PEOPLE[:80])
    assert result.status == "complete"
    ids = [r["id_number"] for r in result.rows]
    assert len(ids) > 80 or len(set(ids)) < len(ids) or set(ids) - set(PEOPLE[:80])  # duplicates or altered IDs


def test_an_agency_lost_mid_fetch_leaves_the_result_incomplete_with_the_reason(agencies):
    """The first batch is answered, then the agency is gone: what was read is kept, the source is incomplete."""
    import requests

    from connectors.registry import base_url

    class GoneAfterFirstAnswer(requests.Session):
        answered = 0

        def post(self, *args, **kwargs):
            if self.answered:
                raise requests.ConnectionError("agency gone")
            self.answered += 1
            return super().post(*args, **kwargs)

    key = "real_estate"  # batches of 20
    allows, ids = allows_for(PEOPLE[:50], key)
    c = connector(key, base_url(key, agencies.url), policy=FAST)
    c.http = GoneAfterFirstAnswer()
    result = c.fetch(allows, ids, auth_ref="req-1")
    assert (result.status, result.reason) == ("incomplete", Failure.UNREACHABLE.value)
    assert result.missing == 30 and result.calls == 1 + FAST.retries + 1
    assert agencies.stats()[key]["served"] == 1
