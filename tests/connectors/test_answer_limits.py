"""The time and size bounds of an answer's body (connectors.transport.read_body), against real loopback servers
that misbehave on the wire: a body dripped byte by byte is stopped at the call's deadline, an oversized or endless
body at its cap (never held whole), a compression bomb at its cap once decoded, eleven oversized answers at once stay
within the re-check's memory budget."""

from __future__ import annotations

import dataclasses
import gzip
import socket
import threading
import time
import tracemalloc

import pytest

from connectors.transport import AgencyError, Breakers, Failure, Transport
from tests.support.connectors import FAST

MB = 1 << 20


class Wire:
    """A loopback server answering every connection with ``head`` (status line and headers) and then ``body``: bytes,
    or a callable writing to the socket itself (slowly, endlessly). Counts the body bytes it managed to send."""

    def __init__(self, head: bytes, body):
        self.head, self.body, self.sent = head, body, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/query"

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        try:
            conn.recv(65536)  # the request (small): not looked at
            conn.sendall(self.head)
            if callable(self.body):
                self.body(self, conn)
            else:
                conn.sendall(self.body)
                self.sent += len(self.body)
        except OSError:
            pass  # the client hung up: what the test expects
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.fixture
def wire():
    servers = []

    def start(head: bytes, body) -> Wire:
        servers.append(Wire(head, body))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _post(url: str, *, policy=FAST, max_bytes=None, counter=None):
    transport = Transport("bank", url, policy=policy, breakers=Breakers())
    return transport.post(url, b"{}", {}, max_bytes=max_bytes,
                          on_attempt=(lambda: counter.append(1)) if counter is not None else None)


def _drip(server: Wire, conn):
    for _ in range(10_000):
        conn.sendall(b"x")
        server.sent += 1
        time.sleep(0.2)


def test_a_body_dripped_byte_by_byte_ends_at_the_deadline(wire):
    server = wire(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", _drip)
    policy = dataclasses.replace(FAST, deadline=1.5, read_timeout=1.0)
    attempts: list = []
    t0 = time.monotonic()
    with pytest.raises(AgencyError) as err:
        _post(server.url, policy=policy, counter=attempts)
    took = time.monotonic() - t0
    assert err.value.failure is Failure.DEADLINE and len(attempts) == 1  # not retried
    assert took < policy.deadline + 1.0, took  # every read waited no longer than the time left
    assert 3 <= server.sent < 100  # bytes kept coming: no single read ever timed out


def test_a_declared_length_beyond_the_cap_fails_before_the_body_is_read(wire):
    body = b"x" * (4 * MB)
    server = wire(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (50 * MB), body)
    attempts: list = []
    with pytest.raises(AgencyError) as err:
        _post(server.url, max_bytes=MB, counter=attempts)
    assert err.value.failure is Failure.TOO_LARGE and len(attempts) == 1
    assert "127.0.0.1" not in str(err.value) and "query" not in str(err.value)


def _endless(server: Wire, conn):
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"y" * (64 * 1024))
    for _ in range(50 * 16):  # 50 MB in 64 KB chunks
        conn.sendall(chunk)
        server.sent += 64 * 1024


def _refused_with_peak(url: str, cap: int) -> tuple[AgencyError, int]:
    """The error of a post capped at ``cap`` that must fail, and the most memory allocated meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(AgencyError) as err:
            _post(url, max_bytes=cap)
        return err.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_endless_chunked_body_stops_at_the_cap_and_is_never_held_whole(wire):
    server = wire(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", _endless)
    err, peak = _refused_with_peak(server.url, 2 * MB)
    assert err.failure is Failure.TOO_LARGE
    assert peak < 3 * 2 * MB, peak  # the cap and the pieces being joined, not 50 MB


def test_a_compression_bomb_stops_at_the_cap_once_decoded(wire):
    bomb = gzip.compress(b"\0" * (200 * MB), compresslevel=9)
    assert len(bomb) < MB
    server = wire(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb), bomb)
    err, peak = _refused_with_peak(server.url, 4 * MB)
    assert err.failure is Failure.TOO_LARGE and peak < 3 * 4 * MB + len(bomb)


def test_eleven_oversized_answers_at_once_stay_within_the_recheck_memory_budget(wire):
    servers = [wire(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", _endless) for _ in range(11)]
    failures: list = []

    def call(server):
        try:
            _post(server.url, max_bytes=8 * MB)
        except AgencyError as exc:
            failures.append(exc.failure)

    tracemalloc.start()
    try:
        threads = [threading.Thread(target=call, args=(s,)) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert failures == [Failure.TOO_LARGE] * 11
    assert peak < 11 * 8 * MB * 2 < 1024 * MB, peak  # at most about the caps, where 50 MB each was 1.7 GB


def test_an_answer_under_the_cap_is_read_whole_with_its_headers(wire):
    body = b'{"code":"0000","data":[]}' * 1000
    server = wire(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Total-Pages: 3\r\n\r\n" % len(body), body)
    resp = _post(server.url, max_bytes=MB)
    assert resp.content == body and resp.headers["X-Total-Pages"] == "3"


def test_a_body_cut_short_is_retried_as_unreachable(wire):
    server = wire(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"x" * 10)
    attempts: list = []
    policy = dataclasses.replace(FAST, retries=2)
    with pytest.raises(AgencyError) as err:
        _post(server.url, policy=policy, max_bytes=MB, counter=attempts)
    assert err.value.failure is Failure.UNREACHABLE and len(attempts) == 3
