"""The shared base of every connector: batching, paging, partial answers, and the consent gate, over one transport.

A connector's ``fetch`` takes the gate's ``Allow`` decisions, which only ``consent.gate.decide`` can make: there
is no way to ask an agency about a person without one. Request URLs and bodies are never logged and never put
in exception text (they hold ID numbers).

Every answer is signed by its agency (connectors.signing): the signature, the source, the request's nonce, the
time and the body's hash are checked before the body is parsed (BAD_SIGNATURE), and the rows read are counted
against the signed counts after (COUNT_MISMATCH, for the persons concerned); the signed manifest, not the body,
says which persons the agency does not know and how many pages there are. Answers are read up to the contract's
``max_answer_bytes`` (TOO_LARGE beyond).

Every call goes through connectors.transport, which classifies failures once (its ERRORS table: retried with
backoff, 429 after Retry-After, refusals never), keeps a circuit breaker per agency and bounds each fetch's total
time; its Failure, AgencyError and Policy are every connector's, and are imported from here too. A partial
answer is never complete: missing members, refused members or an interrupted fetch make the result incomplete or
unavailable, with the reason.

Re-checks ask in batch exchanges (批量核对, ``Source.exchange``): one call carries up to the agency's batch limit of
persons from many households, each with the reference of their own authorization, and the agency answers each person
under that reference. The answer is split back per household by reference (``Exchanged.result_for``): a person whose
rows come back under another reference, or miscounted, is unanswered and none of their rows is used; a person whose
reference the agency rejected is unanswered without sinking the others; rows under no reference sent make the whole
exchange COUNT_MISMATCH (whose they are is unknown).
"""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Mapping, Sequence

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from connectors.auth import Credential, batch_ref, request_headers
from connectors.signing import BadSignature, Manifest, count_mismatches, new_nonce, signature_of, trusted_keys, \
    verify_answer
from connectors.transport import AgencyError, Breakers, Failure, Policy, Transport
from connectors.wire import Answer, BadAnswer, build_request, parse_answer
from consent.gate import Allow
from core.settings import settings
from schemas.contracts import AgencySpec, from_wire

__all__ = ["AgencyError", "Exchanged", "Failure", "FetchResult", "Person", "Policy", "Source", "StillAllowed"]

BATCH_MISMATCH = "BATCH_MISMATCH"  # a person's rows answered under another person's reference (a batch exchange)
REFERENCE_REJECTED = "REFERENCE_REJECTED"  # the agency rejected the person's authorization reference

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
    signatures: list[dict | None] = field(default_factory=list)  # each raw answer's signature headers, kept with it
    calls: int = 0  # HTTP calls made, retries included
    withdrawn: set[str] = field(default_factory=set)  # ID numbers the gate refused when asked again before a call
    miscounted: set[str] = field(default_factory=set)  # ID numbers whose rows differ from the signed counts


@dataclass(frozen=True)
class Person:
    """One person of a batch exchange: the gate's decision, their ID number (never logged) and the reference of
    their authorization."""

    allow: Allow
    id_number: str
    ref: str


@dataclass
class Exchanged:
    """What one batch exchange gave: its raw answers (one per page, in order) and, per ID number, the outcome."""

    source: str
    raw: list[bytes] = field(default_factory=list)
    signatures: list[dict | None] = field(default_factory=list)
    response_sha256: str | None = None
    calls: int = 0
    failure: str | None = None  # the exchange stopped early: why
    used: int = 0  # the answers whose rows were taken (the first ones; an answer after them failed a check)
    rows: list[tuple[str, dict]] = field(default_factory=list)  # (reference, canonical row), in the answers' order
    # ID number -> answered | not_found | rejected | unanswered | withdrawn
    outcome: dict[str, str] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)  # ID number -> why unanswered (COUNT_MISMATCH, BATCH_MISMATCH)
    # the rows' places by reference, made once for every household's share: (the rows it was made of, its length,
    # reference -> [(place, row)])
    _by_ref: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def _rows_under(self, refs: set[str]) -> list[dict]:
        """The rows answered under ``refs``, in the answers' order: one pass over the exchange's rows for all of its
        households, not one per household (a bank's exchange of 50 persons carries some 900 rows)."""
        if self._by_ref is None or self._by_ref[0] is not self.rows or self._by_ref[1] != len(self.rows):
            index: dict[str, list[tuple[int, dict]]] = {}
            for place, (ref, row) in enumerate(self.rows):
                index.setdefault(ref, []).append((place, row))
            self._by_ref = (self.rows, len(self.rows), index)
        index = self._by_ref[2]
        return [row for _, row in sorted((x for ref in refs for x in index.get(ref, ())), key=lambda x: x[0])]

    def result_for(self, persons: Sequence[Person]) -> FetchResult:
        """One household's share of the exchange, as a fetch of its own would give it (without the raw answers,
        which the exchange keeps): the rows answered under its persons' references, each person's outcome, and the
        status with the first reason that applies (the exchange's failure, a miscount or mismatch, a rejected
        reference, a person not found)."""
        refs = {p.ref for p in persons}
        ids = [p.id_number for p in persons]
        outcome = {i: self.outcome.get(i, "unanswered") for i in ids}
        result = FetchResult(source=self.source, status="complete", rows=self._rows_under(refs),
                             response_sha256=self.response_sha256, calls=self.calls,
                             withdrawn={i for i in ids if outcome[i] == "withdrawn"})
        asked = [i for i in ids if outcome[i] != "withdrawn"]
        result.requested = len(asked)
        result.not_found = {i for i in asked if outcome[i] == "not_found"}
        result.unanswered = {i for i in asked if outcome[i] in ("unanswered", "rejected")}
        result.miscounted = {i for i in asked if self.why.get(i) == Failure.COUNT_MISMATCH.value}
        result.missing = len(result.unanswered) + len(result.not_found)
        heard = any(outcome[i] in ("answered", "not_found") for i in asked)
        reasons = [self.why.get(i, self.failure) for i in asked if outcome[i] == "unanswered"]
        reasons += [REFERENCE_REJECTED for i in asked if outcome[i] == "rejected"]
        if reasons:
            result.status = "incomplete" if heard or result.rows else "unavailable"
            result.reason = next((r for r in (self.failure, Failure.COUNT_MISMATCH.value, BATCH_MISMATCH,
                                              REFERENCE_REJECTED) if r in reasons), reasons[0])
        elif result.not_found:
            result.status, result.reason = "incomplete", "MEMBERS_NOT_FOUND"
        return result


StillAllowed = Callable[[list[Allow]], list[Allow]]  # the gate asked again before a call: the allows that still hold
Trust = Callable[[], Mapping[str, Ed25519PublicKey]]  # key id -> public key of the agency's answer keys, now


@dataclass
class Signed:
    """One answer whose signature held: its body, headers and manifest."""

    body: bytes
    headers: Mapping[str, str]
    manifest: Manifest


class Source:
    """A declared source: a subclass names its agency's contract; everything else is shared."""

    contract: ClassVar[AgencySpec]

    def __init__(self, base_url: str, *, credential: Credential, signing_key: Ed25519PrivateKey,
                 http: requests.Session | None = None, policy: Policy | None = None, breakers: Breakers | None = None,
                 trust: Trust | None = None):
        """``trust``: the agency's public answer keys (read from HUB_HOME's trust list, as it is now, when None)."""
        if credential.scheme != self.contract.auth:
            raise ValueError(f"{self.key}: the agency expects a {self.contract.auth} credential")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.credential, self.signing_key = credential, signing_key
        self.trust: Trust = trust or (lambda home=settings().home: trusted_keys(home, self.key))
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
    def _call(self, body: bytes, auth_ref: str, deadline: float, result: FetchResult, page: int = 1,
              relative: str | None = None) -> Signed:
        """POST ``body`` to the contract's path, or to another operation's path ``relative`` to the base URL; the
        answer is returned only when its signature holds for this very attempt (else BAD_SIGNATURE)."""
        url = self.base_url + (relative or self.contract.path)
        path = urllib.parse.urlsplit(url).path
        content_type = "application/xml" if self.contract.wire == "xml" else "application/json"
        sent = {"nonce": ""}

        def headers() -> dict[str, str]:  # signed anew for each attempt (an HMAC carries its time), a nonce each
            sent["nonce"] = new_nonce()
            return {**request_headers(method="POST", path=path, body=body, auth_ref=auth_ref,
                                      credential=self.credential, signing_key=self.signing_key, nonce=sent["nonce"]),
                    "Content-Type": content_type}

        def attempted() -> None:
            result.calls += 1

        resp = self.transport.post(url, body, headers, deadline=deadline, on_attempt=attempted,
                                   max_bytes=self.contract.max_answer_bytes)
        try:
            manifest = verify_answer(resp.headers, resp.content, source=self.key, trusted=self.trust(),
                                     nonce=sent["nonce"])
        except BadSignature as exc:
            raise AgencyError(self.key, Failure.BAD_SIGNATURE, exc.why) from None
        if manifest.page != page:
            raise AgencyError(self.key, Failure.BAD_SIGNATURE, "another page")
        return Signed(resp.content, resp.headers, manifest)

    def _read(self, signed: Signed) -> Answer:
        """The answer's rows, its not-found list and pages as the signed manifest states them (BAD_RESPONSE when
        the body cannot be read or contradicts the manifest's not-found list)."""
        try:
            answer = parse_answer(self.contract, signed.body, signed.headers)
        except BadAnswer as exc:
            raise AgencyError(self.key, Failure.BAD_RESPONSE, exc.kind) from None
        m = signed.manifest
        if self.contract.wire != "csv" and sorted(answer.not_found) != sorted(m.not_found):
            raise AgencyError(self.key, Failure.BAD_RESPONSE, "not-found list")
        answer.not_found, answer.pages = list(m.not_found), m.pages
        return answer

    # -- health ---------------------------------------------------------------------------------------------
    def probe(self) -> tuple[bool, float | None, str | None]:
        """One query naming nobody, without retries: (answered, milliseconds, failure)."""
        t0 = time.monotonic()
        result = FetchResult(source=self.key, status="complete")
        try:
            self._read(self._call(build_request(self.contract, [], 1), "health-probe",
                                  t0 + self.policy.read_timeout, result))
        except AgencyError as exc:
            return False, None, exc.failure.value
        return True, round((time.monotonic() - t0) * 1000, 1), None

    # -- a batch exchange (批量核对) ----------------------------------------------------------------------------
    def exchange(self, persons: Sequence[Person], *,
                 still_allowed: Callable[[list[Person]], list[Person]] | None = None) -> Exchanged:
        """Ask the agency about ``persons`` of many households in one call (and its pages), each named with the
        reference of their own authorization; at most the agency's batch limit, no ID number twice.

        ``still_allowed`` asks the gate again before every page: a person no longer allowed is named in no further
        call (``withdrawn``); an exchange part-way through its pages starts again from its first page without them,
        its earlier answers dropped."""
        spec = self.contract
        for p in persons:
            if not isinstance(p.allow, Allow) or p.allow.source != self.key:
                raise TypeError(f"{self.key}: an exchange needs the gate's Allow decisions for this source")
        if len(persons) > spec.max_batch or len({p.id_number for p in persons}) != len(persons):
            raise ValueError(f"{self.key}: at most {spec.max_batch} persons, each once, per exchange")
        out = Exchanged(source=self.key)
        counter = FetchResult(source=self.key, status="complete")
        group = list(persons)
        answered: set[str] = set()
        heard: dict[str, str] = {}  # not_found | rejected, as the agency declared
        excluded: dict[str, str] = {}  # ID number -> COUNT_MISMATCH | BATCH_MISMATCH
        deadline = time.monotonic() + self.policy.deadline
        page, pages = 1, 1
        try:
            while page <= pages:
                if still_allowed is not None:
                    kept = still_allowed(group)
                    if len(kept) != len(group):
                        held = {p.id_number for p in kept}
                        out.outcome.update({p.id_number: "withdrawn" for p in group if p.id_number not in held})
                        group = kept
                        if page > 1:  # the earlier pages answered a question naming someone who withdrew
                            for kept_so_far in (out.raw, out.signatures, out.rows, answered, heard, excluded):
                                kept_so_far.clear()
                            page, pages, out.used = 1, 1, 0
                        if not group:
                            break
                ids, refs = [p.id_number for p in group], [p.ref for p in group]
                signed = self._call(build_request(spec, ids, page, refs), batch_ref(refs), deadline, counter, page)
                out.raw.append(signed.body)
                out.signatures.append(signature_of(signed.headers))
                answer = self._read(signed)
                sent, refs_sent = dict(zip(ids, refs)), set(refs)
                declared = {*answer.not_found, *signed.manifest.rejected}
                if declared - set(sent):
                    raise AgencyError(self.key, Failure.BAD_RESPONSE, "persons not asked")
                miscounted = count_mismatches(signed.manifest, answer.rows, spec.id_field)
                if miscounted - set(sent):  # rows of no one asked about: whose they are is unknown
                    raise AgencyError(self.key, Failure.COUNT_MISMATCH)
                taken, mismatched = [], {}
                for r in answer.rows:
                    ref, idn = r.pop(spec.ref_field, None), r.get(spec.id_field)
                    if ref not in refs_sent or (idn in sent and sent[idn] != ref):
                        if idn not in sent:  # under no reference sent, of no one asked: no household's
                            raise AgencyError(self.key, Failure.COUNT_MISMATCH)
                        mismatched.setdefault(idn, BATCH_MISMATCH)  # answered for another household
                        continue
                    taken.append((ref, from_wire(spec, r)))
                out.rows += taken  # only an answer read whole gives rows
                out.used = len(out.raw)
                excluded.update({i: Failure.COUNT_MISMATCH.value for i in miscounted})
                excluded.update({i: why for i, why in mismatched.items() if i not in excluded})
                heard.update({i: "not_found" for i in answer.not_found})
                heard.update({i: "rejected" for i in signed.manifest.rejected})
                answered.update(ids)
                pages = answer.pages
                page += 1
        except AgencyError as exc:
            log.warning("exchange with %s stopped: %s", self.key, exc.failure.value)
            out.failure = exc.failure.value
        if excluded:  # none of such a person's rows is used, on any page
            out.rows = [(ref, row) for ref, row in out.rows if row.get("id_number") not in excluded]
        for p in group:
            i = p.id_number
            out.outcome[i] = "unanswered" if i in excluded else heard.get(i) or (
                "answered" if i in answered else "unanswered")
            if i in excluded:
                out.why[i] = excluded[i]
        digest = hashlib.sha256()
        for raw in out.raw:
            digest.update(raw)
        out.response_sha256, out.calls = digest.hexdigest(), counter.calls
        return out

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
                                del result.rows[rows_from:], result.raw[raw_from:], result.signatures[raw_from:]
                                page, pages = 1, 1
                            if not group:
                                break
                    chunk = [id_numbers[a.person_ref] for a in group]
                    signed = self._call(build_request(spec, chunk, page), auth_ref, deadline, result, page)
                    result.raw.append(signed.body)
                    result.signatures.append(signature_of(signed.headers))
                    answer = self._read(signed)
                    wire_rows = answer.rows
                    miscounted = count_mismatches(signed.manifest, wire_rows, spec.id_field)
                    if miscounted - set(chunk):  # rows of no one asked about: who they belong to is unknown
                        raise AgencyError(self.key, Failure.COUNT_MISMATCH)
                    result.miscounted.update(miscounted)  # the persons concerned: unanswered, their rows unused
                    result.rows.extend(from_wire(spec, r) for r in wire_rows)
                    answered.update(chunk)  # an agency answers for every person it was asked about
                    answered.difference_update(answer.not_found)
                    declared_unknown.update(answer.not_found)
                    pages = answer.pages
                    page += 1
        except AgencyError as exc:
            log.warning("fetch from %s stopped: %s", self.key, exc.failure.value)
            result.status = "incomplete" if result.rows or answered else "unavailable"
            result.reason = exc.failure.value
        if result.miscounted:  # on any page: none of the person's rows is used
            answered.difference_update(result.miscounted)
            result.rows = [r for r in result.rows if r.get("id_number") not in result.miscounted]
        digest = hashlib.sha256()
        for raw in result.raw:  # over the answers kept, in order
            digest.update(raw)
        result.response_sha256 = digest.hexdigest()
        ids = [i for i in ids if i not in result.withdrawn]
        result.requested = len(ids)
        result.missing = sum(1 for i in ids if i not in answered)
        result.not_found = {i for i in ids if i in declared_unknown}
        result.unanswered = {i for i in ids if i not in answered and i not in declared_unknown}
        if result.status == "complete" and result.miscounted & set(ids):
            result.status = "incomplete" if answered or result.not_found else "unavailable"
            result.reason = Failure.COUNT_MISMATCH.value
        elif result.status == "complete" and result.missing:
            result.status, result.reason = "incomplete", "MEMBERS_NOT_FOUND"
        return result

