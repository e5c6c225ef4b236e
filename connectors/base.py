"""The shared base of every connector: transport, batching, error classification, and the consent gate.

A connector's ``fetch`` takes the gate's ``Allow`` decisions, which only ``consent.gate.decide`` can make:
there is no way to ask an agency about a person without one. Request URLs and bodies are never logged
and never put in exception text (they hold ID numbers).
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import urllib.parse

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.auth import Credential, request_headers
from consent.gate import Allow

log = logging.getLogger(__name__)


class Failure(str, enum.Enum):
    """Every way a call can fail, classified once (see ERRORS)."""

    UNREACHABLE = "UNREACHABLE"  # connection refused or reset, DNS
    TIMEOUT = "TIMEOUT"
    SERVER_ERROR = "SERVER_ERROR"  # 5xx
    RATE_LIMITED = "RATE_LIMITED"  # 429
    REFUSED = "REFUSED"  # 401/403: the agency refused our credentials or authorization
    BAD_REQUEST = "BAD_REQUEST"  # other 4xx
    BAD_RESPONSE = "BAD_RESPONSE"  # body unreadable


class Action(str, enum.Enum):
    RETRY = "retry"
    FAIL = "fail"


# status or failure -> (failure type, action); a refusal is never retried.
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


@dataclass
class FetchResult:
    source: str
    status: str  # complete | incomplete | unavailable
    rows: list[dict] = field(default_factory=list)  # canonical rows
    requested: int = 0
    missing: int = 0  # asked for, not answered
    reason: str | None = None
    response_sha256: str | None = None  # over every raw response body, in order


class Source:
    """A declared source. Subclasses set the class attributes and implement build_body/parse."""

    key: ClassVar[str]
    name: ClassVar[str]
    path: ClassVar[str]  # relative to the agency's base URL
    auth: ClassVar[str]  # the agency's credential scheme: api_key | hmac
    max_batch: ClassVar[int] = 50
    retries: ClassVar[int] = 2
    timeout: ClassVar[tuple[float, float]] = (3.0, 20.0)  # connect, read

    def __init__(self, base_url: str, *, credential: Credential, signing_key: Ed25519PrivateKey,
                 http: requests.Session | None = None):
        if credential.scheme != self.auth:
            raise ValueError(f"{self.key}: the agency expects a {self.auth} credential")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.credential, self.signing_key = credential, signing_key
        self.http = http or requests.Session()

    # -- to declare per source --------------------------------------------------------------
    def build_body(self, id_numbers: list[str]) -> dict:
        raise NotImplementedError

    def parse(self, body: dict) -> tuple[list[dict], list[str]]:
        """Map the agency's answer to (canonical rows, ID numbers not found)."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------
    def _post(self, body: dict, auth_ref: str) -> bytes:
        url = self.base_url + self.path
        data = json.dumps(body).encode("utf-8")
        last: AgencyError | None = None
        for _attempt in range(self.retries + 1):
            headers = request_headers(method="POST", path=urllib.parse.urlsplit(url).path, body=data,
                                      auth_ref=auth_ref, credential=self.credential, signing_key=self.signing_key)
            headers["Content-Type"] = "application/json"
            try:
                resp = self.http.post(url, data=data, headers=headers, timeout=self.timeout)
            except requests.Timeout:
                failure, action = classify("timeout")
            except requests.ConnectionError:
                failure, action = classify("connection")
            else:
                if resp.status_code == 200:
                    return resp.content
                failure, action = classify(resp.status_code)
            last = AgencyError(self.key, failure)
            if action is Action.FAIL:
                break
        assert last is not None
        raise last

    def fetch(self, allows: Sequence[Allow], id_numbers: dict[str, str], auth_ref: str) -> FetchResult:
        """Ask the agency about the persons of ``allows``.

        ``id_numbers`` maps person_ref -> ID number (decrypted by the caller); only persons with an
        ``Allow`` for this source are sent.
        """
        for a in allows:
            if not isinstance(a, Allow) or a.source != self.key:
                raise TypeError(f"{self.key}: fetch needs the gate's Allow decisions for this source")
        ids = [id_numbers[a.person_ref] for a in allows]
        result = FetchResult(source=self.key, status="complete", requested=len(ids))
        digest = hashlib.sha256()
        found_ids: set[str] = set()
        try:
            for start in range(0, len(ids), self.max_batch):
                chunk = ids[start : start + self.max_batch]
                raw = self._post(self.build_body(chunk), auth_ref)
                digest.update(raw)
                try:
                    body = json.loads(raw.decode("utf-8"))
                    rows, _not_found = self.parse(body)
                except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                    raise AgencyError(self.key, Failure.BAD_RESPONSE) from exc
                result.rows.extend(rows)
                found_ids.update(r.get("id_number") for r in rows)
        except AgencyError as exc:
            log.warning("fetch from %s failed: %s", self.key, exc.failure.value)
            result.status = "unavailable" if not result.rows else "incomplete"
            result.reason = exc.failure.value
        result.response_sha256 = digest.hexdigest()
        result.missing = sum(1 for i in ids if i not in found_ids)
        if result.status == "complete" and result.missing:
            result.status, result.reason = "incomplete", "MEMBERS_NOT_FOUND"
        return result
