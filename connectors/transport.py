"""The one HTTP transport of every source: a POST with a time bound, retries, a circuit breaker, and failures
classified once, as data.

Failures are classified in ERRORS: connection errors, timeouts, cut-off bodies and 5xx are retried with exponential
backoff and full jitter; 429 waits as long as Retry-After says (up to ``Policy.max_retry_after``); refusals
(401/403) and other 4xx are never retried. Each attempt has its own timeout and no attempt starts, or waits, past
the call's deadline; the deadline bounds the answer's body too, however slowly it trickles in (it is read in pieces,
each read's timeout cut to the time left, and a body still arriving at the deadline is DEADLINE, not retried). A
body is read streamed up to ``max_bytes`` (decoded: a compression bomb stops there too) and is TOO_LARGE beyond, never
held whole: a declared Content-Length beyond the cap fails before any of it is read. A circuit breaker per address stops calling one that keeps failing; breakers live in a
``Breakers`` registry: the hub's (``BREAKERS``, a ``SharedBreakers``) keeps each circuit, and the Retry-After an
agency gave, in the store, so every process calling the address sees one circuit; a ``Breakers`` injected instead
keeps them in the process. ``Breakers.reset`` forgets every one (tests do, around each test: tests/conftest.py).

Request URLs, headers and bodies are never logged and never put in exception text (they hold ID numbers and
credentials): an ``AgencyError`` names the source, the failure and at most a label the caller chose (a peer's id).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import requests
import urllib3.exceptions
from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from core.store import AgencyCircuit, engine, utcnow

log = logging.getLogger(__name__)


class Failure(str, enum.Enum):
    """Every way a call can fail."""

    UNREACHABLE = "UNREACHABLE"  # connection refused or reset, body cut short
    TIMEOUT = "TIMEOUT"
    SERVER_ERROR = "SERVER_ERROR"  # 5xx
    RATE_LIMITED = "RATE_LIMITED"  # 429
    REFUSED = "REFUSED"  # 401/403: the agency refused our credential or authorization
    BAD_REQUEST = "BAD_REQUEST"  # other 4xx
    BAD_RESPONSE = "BAD_RESPONSE"  # an answer that cannot be read (encoding, format, envelope)
    CIRCUIT_OPEN = "CIRCUIT_OPEN"  # the agency failed too often just now; not called
    DEADLINE = "DEADLINE"  # the fetch's time bound ran out
    TOO_LARGE = "TOO_LARGE"  # the answer is larger than its source's contract allows
    BAD_SIGNATURE = "BAD_SIGNATURE"  # the answer's signature is missing, wrong, for another request or too old
    COUNT_MISMATCH = "COUNT_MISMATCH"  # the answer's rows differ from the counts its signed manifest declares


class Action(str, enum.Enum):
    RETRY = "retry"
    FAIL = "fail"


# what happened -> (failure type, action). A refusal is never retried.
ERRORS: dict[object, tuple[Failure, Action]] = {
    "connection": (Failure.UNREACHABLE, Action.RETRY),
    "timeout": (Failure.TIMEOUT, Action.RETRY),
    401: (Failure.REFUSED, Action.FAIL),
    403: (Failure.REFUSED, Action.FAIL),
    429: (Failure.RATE_LIMITED, Action.RETRY),
    "4xx": (Failure.BAD_REQUEST, Action.FAIL),
    "5xx": (Failure.SERVER_ERROR, Action.RETRY),
    "body": (Failure.BAD_RESPONSE, Action.FAIL),
    "too_large": (Failure.TOO_LARGE, Action.FAIL),
    "deadline": (Failure.DEADLINE, Action.FAIL),  # a body still arriving when the call's time is up
}

# the failures that count against an address's circuit breaker (the address did not answer, or answered 5xx)
BREAKING = frozenset({Failure.UNREACHABLE, Failure.TIMEOUT, Failure.SERVER_ERROR})


def classify(status: int | str) -> tuple[Failure, Action]:
    if status in ERRORS:
        return ERRORS[status]
    if isinstance(status, int) and 400 <= status < 500:
        return ERRORS["4xx"]
    return ERRORS["5xx"]


class AgencyError(Exception):
    """A call to an agency failed; the message names the source and failure, never the request."""

    def __init__(self, source: str, failure: Failure, detail: str = ""):
        self.source, self.failure = source, failure
        super().__init__(f"{source}: {failure.value}{' (' + detail + ')' if detail else ''}")


@dataclass(frozen=True)
class Policy:
    """Timeouts, retries and the circuit breaker of one connector."""

    connect_timeout: float = 3.0
    read_timeout: float = 20.0
    retries: int = 4  # after the first attempt
    backoff_base: float = 0.25  # seconds; attempt n waits uniform(0, min(cap, base * 2**n))
    backoff_cap: float = 8.0
    max_retry_after: float = 30.0  # longest Retry-After honoured
    deadline: float = 120.0  # total seconds for one fetch
    breaker_threshold: int = 5  # consecutive failures that open the circuit
    breaker_cooldown: float = 30.0  # seconds before one trial call


class CircuitBreaker:
    """Per address: closed; open after ``threshold`` consecutive failures; one trial call after ``cooldown``."""

    def __init__(self, threshold: int, cooldown: float):
        self.threshold, self.cooldown = threshold, cooldown
        self.failures = 0
        self.opened_at: float | None = None
        self.not_before = 0.0  # time.monotonic() before which no call is made (a Retry-After)
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            if self.opened_at is None:
                return True
            if time.monotonic() - self.opened_at >= self.cooldown:
                self.opened_at = time.monotonic()  # half-open: this call is the trial; others wait again
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_at = time.monotonic()

    def hold(self, seconds: float) -> None:
        """No call before ``seconds`` from now (the agency's Retry-After)."""
        with self._lock:
            self.not_before = max(self.not_before, time.monotonic() + seconds)

    def pause(self) -> float:
        """Seconds to wait before the next call (a Retry-After still holding), 0 when none."""
        return max(0.0, self.not_before - time.monotonic())

    def admit(self) -> float | None:
        """None when no call may be made now (the circuit open), else the seconds to wait first."""
        return self.pause() if self.allow() else None


class SharedCircuitBreaker:
    """``CircuitBreaker``'s rules with the state in the store (``agency_circuits``), so that every process calling
    one address (the re-check's parallel batches, several API workers) sees one circuit: a down agency opens it once
    for all of them instead of once per process, the one trial call after the cooldown is taken by one process only
    (a conditional UPDATE), and a Retry-After one process was told holds the others back too. A call reads the
    circuit once before it is made (``admit``), and once more after it succeeded only if that read found failures;
    the circuit is written only on a failure, on the first success after failures, and on a Retry-After. Should the
    store itself fail, the process's own breaker decides meanwhile (logged)."""

    def __init__(self, address: str, threshold: int, cooldown: float):
        self.key = hashlib.sha256(address.encode("utf-8")).hexdigest()
        self.threshold, self.cooldown = threshold, cooldown
        self.local = CircuitBreaker(threshold, cooldown)
        self._seen = threading.local()  # .clean: this thread's last ``admit`` found no failure and no open circuit

    def _state(self, conn):
        return conn.execute(select(AgencyCircuit.failures, AgencyCircuit.opened_at, AgencyCircuit.not_before)
                            .where(AgencyCircuit.key == self.key)).first()

    def _fallback(self, exc: Exception) -> None:
        log.warning("circuit of %s: the store did not answer (%s); this process's own breaker decides",
                    self.key[:12], type(exc).__name__)

    def admit(self) -> float | None:
        """None when the circuit is open (no call now), else the seconds to wait before calling (0 unless a
        Retry-After holds): the circuit read once."""
        self._seen.clean = False
        try:
            with engine().connect() as conn:
                row = self._state(conn)
                self._seen.clean = row is None or (not row.failures and row.opened_at is None)
                if row is None:
                    return 0.0
                now = utcnow()
                if row.opened_at is not None:
                    if (now - row.opened_at).total_seconds() < self.cooldown:
                        return None
                    took = conn.execute(update(AgencyCircuit).where(AgencyCircuit.key == self.key,
                                                                     AgencyCircuit.opened_at == row.opened_at)
                                        .values(opened_at=now)).rowcount  # half-open: the trial is one process's
                    conn.commit()
                    if not took:
                        return None
                return max(0.0, (row.not_before - now).total_seconds()) if row.not_before is not None else 0.0
        except SQLAlchemyError as exc:
            self._fallback(exc)
            return self.local.admit()

    def allow(self) -> bool:
        """Whether a call may be made now (as ``CircuitBreaker.allow``: after the cooldown, the trial is taken)."""
        return self.admit() is not None

    def pause(self) -> float:
        """Seconds a Retry-After still holds calls back, 0 when none (a read only: no trial is taken)."""
        try:
            with engine().connect() as conn:
                row = self._state(conn)
        except SQLAlchemyError as exc:
            self._fallback(exc)
            return self.local.pause()
        return max(0.0, (row.not_before - utcnow()).total_seconds()) if row and row.not_before else 0.0

    def success(self) -> None:
        self.local.success()
        if getattr(self._seen, "clean", False):
            return  # the circuit had nothing to forget when this call was admitted
        try:
            with engine().connect() as conn:
                row = self._state(conn)
                if row is not None and (row.failures or row.opened_at is not None):
                    conn.execute(update(AgencyCircuit).where(AgencyCircuit.key == self.key)
                                 .values(failures=0, opened_at=None))
                    conn.commit()
        except SQLAlchemyError as exc:
            self._fallback(exc)

    def failure(self) -> None:
        self.local.failure()
        now, t = utcnow(), AgencyCircuit.__table__
        try:
            with engine().begin() as conn:
                _upsert(conn, t, {"key": self.key, "failures": 1, "opened_at": now if self.threshold <= 1 else None,
                                  "not_before": None},
                        {"failures": t.c.failures + 1,
                         "opened_at": case((t.c.failures + 1 >= self.threshold, now), else_=t.c.opened_at)})
        except SQLAlchemyError as exc:
            self._fallback(exc)

    def hold(self, seconds: float) -> None:
        self.local.hold(seconds)
        until, t = utcnow() + dt.timedelta(seconds=seconds), AgencyCircuit.__table__
        try:
            with engine().begin() as conn:
                _upsert(conn, t, {"key": self.key, "failures": 0, "opened_at": None, "not_before": until},
                        {"not_before": case((t.c.not_before > until, t.c.not_before), else_=until)})
        except SQLAlchemyError as exc:
            self._fallback(exc)


def _upsert(conn, table, values: dict, on_conflict: dict) -> None:
    """INSERT ``values``, or on the key's conflict UPDATE ``on_conflict`` (SQLite and PostgreSQL alike)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(table).values(**values).on_conflict_do_update(index_elements=["key"], set_=on_conflict))


class Breakers:
    """The circuit breakers of a process, one per address, shared by every transport to that address (a connector
    made anew for each fetch still finds its agency's circuit open). The first policy to ask for an address sets its
    breaker's threshold and cooldown."""

    def __init__(self):
        self._breakers: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def of(self, address: str, policy: Policy) -> CircuitBreaker:
        with self._lock:
            if address not in self._breakers:
                self._breakers[address] = self._make(address, policy)
            return self._breakers[address]

    def _make(self, address: str, policy: Policy) -> CircuitBreaker:
        return CircuitBreaker(policy.breaker_threshold, policy.breaker_cooldown)

    def reset(self) -> None:
        """Forget every breaker: each address starts closed again, with the next policy that asks for it."""
        with self._lock:
            self._breakers.clear()


class SharedBreakers(Breakers):
    """Breakers whose circuits live in the store (``SharedCircuitBreaker``): one circuit per address for every
    process of the hub. ``reset`` also closes every stored circuit (tests)."""

    def _make(self, address: str, policy: Policy) -> SharedCircuitBreaker:
        return SharedCircuitBreaker(address, policy.breaker_threshold, policy.breaker_cooldown)

    def reset(self) -> None:
        super().reset()
        try:
            with engine().begin() as conn:
                conn.execute(delete(AgencyCircuit))
        except SQLAlchemyError:
            pass  # no store (yet): nothing stored to forget


BREAKERS = SharedBreakers()  # the hub's breakers (shared through the store), unless a transport is given others


def retry_after(value: str | None, cap: float) -> float:
    """Seconds a Retry-After header asks to wait (up to ``cap``; 1 s when it is missing or not a number)."""
    try:
        return min(cap, max(0.0, float(value)))
    except (TypeError, ValueError):
        return min(cap, 1.0)


Headers = Mapping[str, str] | Callable[[], Mapping[str, str]]  # fixed, or made anew for each attempt (a signature)

CHUNK = 64 * 1024  # the most one read of a body returns


def _socket_of(resp: requests.Response):
    """The socket under a streamed response, to cut its timeout to the time left (None where urllib3 hides it)."""
    for path in (("raw", "_connection", "sock"), ("raw", "_fp", "fp", "raw", "_sock")):
        obj = resp
        for name in path:
            obj = getattr(obj, name, None)
            if obj is None:
                break
        if obj is not None and hasattr(obj, "settimeout"):
            return obj
    return None


class _Stop(Exception):
    """Reading a body stopped: ``what`` is its key in ERRORS."""

    def __init__(self, what: str):
        self.what = what


def read_body(resp: requests.Response, *, deadline: float, read_timeout: float, max_bytes: int | None) -> bytes:
    """The body of a streamed response, read in pieces: at most ``max_bytes`` (decoded) and by ``deadline``
    (time.monotonic()), each read waiting no longer than ``read_timeout`` nor the time left. Raises _Stop."""
    declared = resp.headers.get("Content-Length") or ""
    if max_bytes is not None and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise _Stop("too_large")
    sock = _socket_of(resp)
    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Stop("deadline")
        if sock is not None:
            try:
                sock.settimeout(min(read_timeout, left))
            except OSError:
                sock = None
        try:
            chunk = resp.raw.read1(CHUNK, decode_content=True)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            raise _Stop("deadline" if time.monotonic() >= deadline else "timeout") from None
        except urllib3.exceptions.DecodeError:
            raise _Stop("body") from None
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError, OSError):
            raise _Stop("connection") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise _Stop("too_large")
        chunks.append(chunk)


class Transport:
    """POSTs for one source to one address (its breaker's key), as ``policy`` says.

    ``label`` goes into the text of its errors beside the source (a peer's id; never anything of a request);
    ``follow_redirects``: whether a redirect is followed (a peer's never is: its token would go along)."""

    def __init__(self, source: str, address: str, *, policy: Policy | None = None,
                 http: requests.Session | None = None, breakers: Breakers | None = None, label: str = "",
                 follow_redirects: bool = True):
        self.source, self.address, self.label = source, address, label
        self.policy = policy or Policy()
        self.http = http or requests.Session()
        self.breaker = (breakers or BREAKERS).of(address, self.policy)
        self.follow_redirects = follow_redirects
        self._jitter = random.Random()

    def _error(self, failure: Failure, detail: str = "") -> AgencyError:
        return AgencyError(self.source, failure, " ".join(d for d in (self.label, detail) if d))

    def post(self, url: str, body: bytes, headers: Headers, *, deadline: float | None = None,
             answers: tuple[int, ...] = (200,), on_attempt: Callable[[], object] | None = None,
             max_bytes: int | None = None) -> requests.Response:
        """POST ``body`` to ``url`` until an answer with a status in ``answers`` (returned, its body read) or a
        failure not to retry (AgencyError). ``deadline``: a time.monotonic() no attempt, wait or body goes beyond
        (the policy's total bound from now when None); ``on_attempt`` is called before each attempt (to count
        calls); ``max_bytes``: the largest body read (None: no cap)."""
        p = self.policy
        deadline = deadline or time.monotonic() + p.deadline
        for attempt in range(p.retries + 1):
            held = self.breaker.admit()  # None: the circuit is open; else a Retry-After still holding, if any
            if held is None:
                raise self._error(Failure.CIRCUIT_OPEN)
            if held:
                if time.monotonic() + held >= deadline:
                    raise self._error(Failure.DEADLINE, f"after {Failure.RATE_LIMITED.value}")
                time.sleep(held)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._error(Failure.DEADLINE)
            sent = dict(headers() if callable(headers) else headers)
            wait = None
            if on_attempt is not None:
                on_attempt()
            resp = None
            try:
                resp = self.http.post(url, data=body, headers=sent, allow_redirects=self.follow_redirects,
                                      timeout=(p.connect_timeout, min(p.read_timeout, remaining)), stream=True)
                if resp.status_code in answers and resp._content is False:  # not read yet (a stand-in may have)
                    resp._content = read_body(resp, deadline=deadline, read_timeout=p.read_timeout,
                                              max_bytes=max_bytes)
                    resp._content_consumed = True
            except requests.Timeout:
                failure, action = classify("timeout")
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                failure, action = classify("connection")
            except _Stop as stop:
                failure, action = classify(stop.what)
            else:
                if resp.status_code in answers:
                    self.breaker.success()
                    return resp
                failure, action = classify(resp.status_code)
                if resp.status_code == 429:
                    wait = retry_after(resp.headers.get("Retry-After"), p.max_retry_after)
                    self.breaker.hold(wait)  # every process calling this address waits as long
            finally:
                if resp is not None and resp._content is False:
                    resp.close()  # a body not read whole: the connection goes, never back to the pool
            if failure in BREAKING:
                self.breaker.failure()
            if action is Action.FAIL or attempt == p.retries:
                raise self._error(failure)
            if wait is None:
                wait = self._jitter.uniform(0, min(p.backoff_cap, p.backoff_base * 2 ** attempt))
            if time.monotonic() + wait >= deadline:
                raise self._error(Failure.DEADLINE, f"after {failure.value}")
            log.info("%s: %s, retry %d in %.2f s", " ".join(d for d in (self.source, self.label) if d),
                     failure.value, attempt + 1, wait)
            time.sleep(wait)
        raise self._error(Failure.DEADLINE)  # not reached: the loop returns or raises
