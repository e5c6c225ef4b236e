"""The shared base of every connector: transport, batching, paging, failure handling, and the consent gate.

A connector's ``fetch`` takes the gate's ``Allow`` decisions, which only ``consent.gate.decide`` can make: there
is no way to ask an agency about a person without one. Request URLs and bodies are never logged and never put
in exception text (they hold ID numbers).

Failures are classified once, in ERRORS: connection errors, timeouts, cut-off bodies and 5xx are retried with
exponential backoff and full jitter; 429 waits as long as Retry-After says; refusals (401/403) and other 4xx are
never retried. A circuit breaker per agency stops calling one that keeps failing, and every fetch has a bound on
its total time. A partial answer is never complete: missing members, refused members or an interrupted fetch
make the result incomplete or unavailable, with the reason.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.auth import Credential, request_headers
from schemas.contracts import AgencySpec, from_wire
from connectors.wire import BadAnswer, build_request, parse_answer
from consent.gate import Allow

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
}


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
    """Per agency: closed; open after ``threshold`` consecutive failures; one trial call after ``cooldown``."""

    def __init__(self, threshold: int, cooldown: float):
        self.threshold, self.cooldown = threshold, cooldown
        self.failures = 0
        self.opened_at: float | None = None
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


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(base_url: str, policy: Policy) -> CircuitBreaker:
    with _breakers_lock:
        if base_url not in _breakers:
            _breakers[base_url] = CircuitBreaker(policy.breaker_threshold, policy.breaker_cooldown)
        return _breakers[base_url]


@dataclass
class FetchResult:
    source: str
    status: str  # complete | incomplete | unavailable
    rows: list[dict] = field(default_factory=list)  # canonical rows
    requested: int = 0
    missing: int = 0  # asked for, not answered
    not_found: set[str] = field(default_factory=set)  # ID numbers the agency declared unknown
    unanswered: set[str] = field(default_factory=set)  # ID numbers asked about before the fetch stopped, or never
    reason: str | None = None
    response_sha256: str | None = None  # over every raw answer, in order
    raw: list[bytes] = field(default_factory=list)  # every raw answer, for encrypted storage and replay
    calls: int = 0  # HTTP calls made, retries included
    withdrawn: set[str] = field(default_factory=set)  # ID numbers the gate refused when asked again before a call


StillAllowed = Callable[[list[Allow]], list[Allow]]  # the gate asked again before a call: the allows that still hold


class Source:
    """A declared source: a subclass names its agency's contract; everything else is shared."""

    contract: ClassVar[AgencySpec]

    def __init__(self, base_url: str, *, credential: Credential, signing_key: Ed25519PrivateKey,
                 http: requests.Session | None = None, policy: Policy | None = None):
        if credential.scheme != self.contract.auth:
            raise ValueError(f"{self.key}: the agency expects a {self.contract.auth} credential")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.credential, self.signing_key = credential, signing_key
        self.http = http or requests.Session()
        self.policy = policy or Policy()
        self.breaker = breaker_for(self.base_url, self.policy)
        self._jitter = random.Random()

    @property
    def key(self) -> str:
        return self.contract.key

    # -- one call, with retries ------------------------------------------------------------------------------
    def _call(self, body: bytes, auth_ref: str, deadline: float, result: FetchResult,
              relative: str | None = None) -> tuple[bytes, dict]:
        """POST ``body`` to the contract's path, or to another operation's path ``relative`` to the base URL."""
        url = self.base_url + (relative or self.contract.path)
        path = urllib.parse.urlsplit(url).path
        p = self.policy
        for attempt in range(p.retries + 1):
            if not self.breaker.allow():
                raise AgencyError(self.key, Failure.CIRCUIT_OPEN)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AgencyError(self.key, Failure.DEADLINE)
            headers = request_headers(method="POST", path=path, body=body, auth_ref=auth_ref,
                                      credential=self.credential, signing_key=self.signing_key)
            headers["Content-Type"] = "application/xml" if self.contract.wire == "xml" else "application/json"
            wait = None
            result.calls += 1
            try:
                resp = self.http.post(url, data=body, headers=headers,
                                      timeout=(p.connect_timeout, min(p.read_timeout, remaining)))
                content = resp.content  # a body cut short raises here
            except requests.Timeout:
                failure, action = classify("timeout")
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                failure, action = classify("connection")
            else:
                if resp.status_code == 200:
                    self.breaker.success()
                    return content, resp.headers
                failure, action = classify(resp.status_code)
                if resp.status_code == 429:
                    wait = _retry_after(resp.headers.get("Retry-After"), p.max_retry_after)
            if failure in (Failure.UNREACHABLE, Failure.TIMEOUT, Failure.SERVER_ERROR):
                self.breaker.failure()
            if action is Action.FAIL or attempt == p.retries:
                raise AgencyError(self.key, failure)
            if wait is None:
                wait = self._jitter.uniform(0, min(p.backoff_cap, p.backoff_base * 2 ** attempt))
            if time.monotonic() + wait >= deadline:
                raise AgencyError(self.key, Failure.DEADLINE, f"after {failure.value}")
            log.info("%s: %s, retry %d in %.2f s", self.key, failure.value, attempt + 1, wait)
            time.sleep(wait)
        raise AgencyError(self.key, Failure.DEADLINE)  # not reached: the loop returns or raises

    # -- health ---------------------------------------------------------------------------------------------
    def probe(self) -> tuple[bool, float | None, str | None]:
        """One query naming nobody, without retries: (answered, milliseconds, failure)."""
        t0 = time.monotonic()
        result = FetchResult(source=self.key, status="complete")
        try:
            raw, headers = self._call(build_request(self.contract, [], 1), "health-probe", t0 + self.policy.read_timeout,
                                      result)
            parse_answer(self.contract, raw, headers)
        except AgencyError as exc:
            return False, None, exc.failure.value
        except BadAnswer:
            return False, None, Failure.BAD_RESPONSE.value
        return True, round((time.monotonic() - t0) * 1000, 1), None

    # -- a whole fetch ---------------------------------------------------------------------------------------
    def fetch(self, allows: Sequence[Allow], id_numbers: dict[str, str], auth_ref: str, *,
              still_allowed: StillAllowed | None = None) -> FetchResult:
        """Ask the agency about the persons of ``allows`` (``id_numbers``: person_ref -> ID number).

        ``still_allowed`` asks the gate again before every call (each chunk and page): a person it no longer allows
        is named in no further call (``result.withdrawn``); a chunk part-way through its pages starts again from its
        first page without them, its earlier pages' answers and rows dropped."""
        for a in allows:
            if not isinstance(a, Allow) or a.source != self.key:
                raise TypeError(f"{self.key}: fetch needs the gate's Allow decisions for this source")
        ids = [id_numbers[a.person_ref] for a in allows]
        spec = self.contract
        result = FetchResult(source=self.key, status="complete", requested=len(ids))
        answered: set[str] = set()
        declared_unknown: set[str] = set()
        deadline = time.monotonic() + self.policy.deadline
        try:
            for start in range(0, len(allows), spec.max_batch):
                group = list(allows[start: start + spec.max_batch])
                page, pages, rows_from, raw_from = 1, 1, len(result.rows), len(result.raw)
                while page <= pages:
                    if still_allowed is not None:
                        kept = still_allowed(group)
                        if len(kept) != len(group):
                            held = {a.person_ref for a in kept}
                            result.withdrawn.update(id_numbers[a.person_ref] for a in group if a.person_ref not in held)
                            group = kept
                            if page > 1:  # the earlier pages answered a question naming someone who withdrew
                                del result.rows[rows_from:], result.raw[raw_from:]
                                page, pages = 1, 1
                            if not group:
                                break
                    chunk = [id_numbers[a.person_ref] for a in group]
                    raw, headers = self._call(build_request(spec, chunk, page), auth_ref, deadline, result)
                    result.raw.append(raw)
                    try:
                        answer = parse_answer(spec, raw, headers)
                    except BadAnswer as exc:
                        raise AgencyError(self.key, Failure.BAD_RESPONSE, exc.kind) from None
                    rows = [from_wire(spec, r) for r in answer.rows]
                    result.rows.extend(rows)
                    answered.update(chunk)  # an agency answers for every person it was asked about
                    answered.difference_update(answer.not_found)
                    declared_unknown.update(answer.not_found)
                    pages = answer.pages
                    page += 1
        except AgencyError as exc:
            log.warning("fetch from %s stopped: %s", self.key, exc.failure.value)
            result.status = "incomplete" if result.rows or answered else "unavailable"
            result.reason = exc.failure.value
        digest = hashlib.sha256()
        for raw in result.raw:  # over the answers kept, in order
            digest.update(raw)
        result.response_sha256 = digest.hexdigest()
        ids = [i for i in ids if i not in result.withdrawn]
        result.requested = len(ids)
        result.missing = sum(1 for i in ids if i not in answered)
        result.not_found = {i for i in ids if i in declared_unknown}
        result.unanswered = {i for i in ids if i not in answered and i not in declared_unknown}
        if result.status == "complete" and result.missing:
            result.status, result.reason = "incomplete", "MEMBERS_NOT_FOUND"
        return result


def _retry_after(value: str | None, cap: float) -> float:
    try:
        return min(cap, max(0.0, float(value)))
    except (TypeError, ValueError):
        return min(cap, 1.0)
