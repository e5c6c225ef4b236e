"""The shared base of every connector: batching, paging, partial answers, and the consent gate, over one transport.

A connector's ``fetch`` takes the gate's ``Allow`` decisions, which only ``consent.gate.decide`` can make: there
is no way to ask an agency about a person without one. Request URLs and bodies are never logged and never put
in exception text (they hold ID numbers).

Every call goes through connectors.transport, which classifies failures once (its ERRORS table: retried with
backoff, 429 after Retry-After, refusals never), keeps a circuit breaker per agency and bounds each fetch's total
time; its Failure, AgencyError and Policy are every connector's, and are imported from here too. A partial
answer is never complete: missing members, refused members or an interrupted fetch make the result incomplete or
unavailable, with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.auth import Credential, request_headers
from connectors.transport import AgencyError, Breakers, Failure, Policy, Transport
from connectors.wire import BadAnswer, build_request, parse_answer
from consent.gate import Allow
from schemas.contracts import AgencySpec, from_wire

__all__ = ["AgencyError", "Failure", "FetchResult", "Policy", "Source", "StillAllowed"]

log = logging.getLogger(__name__)


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
                 http: requests.Session | None = None, policy: Policy | None = None, breakers: Breakers | None = None):
        if credential.scheme != self.contract.auth:
            raise ValueError(f"{self.key}: the agency expects a {self.contract.auth} credential")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.credential, self.signing_key = credential, signing_key
        self.policy = policy or Policy()
        self.transport = Transport(self.key, self.base_url, policy=self.policy, http=http, breakers=breakers)

    @property
    def key(self) -> str:
        return self.contract.key

    @property
    def http(self) -> requests.Session:
        return self.transport.http

    @http.setter
    def http(self, session: requests.Session) -> None:
        self.transport.http = session

    # -- one call, with retries ------------------------------------------------------------------------------
    def _call(self, body: bytes, auth_ref: str, deadline: float, result: FetchResult,
              relative: str | None = None) -> tuple[bytes, dict]:
        """POST ``body`` to the contract's path, or to another operation's path ``relative`` to the base URL."""
        url = self.base_url + (relative or self.contract.path)
        path = urllib.parse.urlsplit(url).path
        content_type = "application/xml" if self.contract.wire == "xml" else "application/json"

        def headers() -> dict[str, str]:  # signed anew for each attempt (an HMAC carries its time)
            return {**request_headers(method="POST", path=path, body=body, auth_ref=auth_ref,
                                      credential=self.credential, signing_key=self.signing_key),
                    "Content-Type": content_type}

        def attempted() -> None:
            result.calls += 1

        resp = self.transport.post(url, body, headers, deadline=deadline, on_attempt=attempted)
        return resp.content, resp.headers

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

