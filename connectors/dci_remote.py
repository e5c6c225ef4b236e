"""异地核对 / other regions' verification platforms: the hub as a DCI Social Registry client.

The source ``remote_registry`` asks federated platforms (another city's hub, the province's platform) about the
members of a request, with a synchronous DCI search (``/registry/sync/search``), or an asynchronous one answered on
this hub's ``/registry/on-search`` (a peer's ``mode``). Like every source, ``fetch`` takes the consent gate's
``Allow`` decisions for this source: there is no way to ask a peer about a person without one, and each question
carries the person's authorization (``consent``) and the department's entrustment (``authorize``), which the peer
records and checks with its own gate.

Peers are configured, never discovered: HUB_DCI_PEERS names a JSON file (it holds tokens: keep it 0600)::

    {"peers": [{"id": "HUB-210200", "name": "大连市社会救助核对平台", "url": "https://dl.example.cn/dci",
                "token": "<the token the peer issued to this hub>", "public_key": "<the peer's Ed25519 key>",
                "regions": ["2102"], "mode": "sync"}]}

``regions`` are prefixes of the address code that opens a resident ID number (where the person was first
registered); "*" covers everyone. A member is asked of the peers covering them, in the order configured, until one
knows them; peers that know nobody answer with no record, which is no failure ("not found"). Every answer's
signature is checked with the peer's key before anything in it is used. Calls go through connectors.transport, as
an agency's do: failures classified by its table (retried with back-off, refusals never), a circuit breaker per
peer.

Request bodies hold ID numbers: they are never logged, and errors name the peer and the failure only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from connectors import envelope as env
from connectors.base import FetchResult, StillAllowed
from connectors.transport import AgencyError, Breakers, Failure, Policy, Transport
from consent.gate import Allow
from core import ids as params

log = logging.getLogger(__name__)

SOURCE = "remote_registry"
PEERS_BASE = "dci:peers"  # what registry.base_url answers for this source: its addresses are the peers'
MAX_ITEMS = 20  # search items per message
ID_TYPE = "NationalID"
PLATFORM = re.compile(params.PLATFORM)


class PeersError(ValueError):
    """The peers file is malformed; the message names the peer and the field, never a token."""


@dataclass(frozen=True)
class Peer:
    id: str  # the platform's code, its DCI sender id (FED-... or HUB-...)
    name: str
    url: str  # the base of its DCI API, e.g. https://dl.example.cn/dci
    token: str = field(repr=False)  # the bearer token the peer issued to this hub
    public_key: Ed25519PublicKey = field(repr=False)
    regions: tuple[str, ...] = ("*",)
    mode: str = "sync"  # sync | async

    def covers(self, id_number: str) -> bool:
        return any(r == "*" or id_number.startswith(r) for r in self.regions)

    def endpoint(self, path: str) -> str:
        return self.url.rstrip("/") + path

    def owns(self, uri: str) -> bool:
        """Whether ``uri`` lies under the peer's configured address (where its callbacks may go)."""
        base, target = urllib.parse.urlsplit(self.url.rstrip("/") + "/"), urllib.parse.urlsplit(uri)
        return (target.scheme, target.netloc) == (base.scheme, base.netloc) and \
            (target.path + "/").startswith(base.path) and not target.username and not target.password


def _loopback(host: str | None) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


def parse_peers(doc) -> tuple[Peer, ...]:
    if not isinstance(doc, dict) or not isinstance(doc.get("peers"), list):
        raise PeersError('the peers file is {"peers": [...]}')
    out, seen = [], set()
    for i, p in enumerate(doc["peers"]):  # peers[0] is the first, as a JSON path counts
        where = f"peers[{i}]"
        if not isinstance(p, dict):
            raise PeersError(f"{where}: an object")
        pid = p.get("id")
        if not isinstance(pid, str) or not PLATFORM.fullmatch(pid):
            raise PeersError(f"{where}.id: the platform's code, FED-... or HUB-...")
        if pid in seen:
            raise PeersError(f"{where}.id: named twice")
        seen.add(pid)
        url = p.get("url")
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.hostname or parts.username \
                or parts.password or parts.query or parts.fragment:
            raise PeersError(f"{where}.url: an http(s) address without credentials, query or fragment")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise PeersError(f"{where}.url: https is required outside this machine")
        token = p.get("token")
        if not isinstance(token, str) or not token or len(token) > 256 or not token.isascii():
            raise PeersError(f"{where}.token: the bearer token the peer issued to this hub")
        try:
            key = env.load_public_key(p.get("public_key") if isinstance(p.get("public_key"), str) else "")
        except ValueError:
            raise PeersError(f"{where}.public_key: the peer's Ed25519 public key, raw, base64url") from None
        regions = p.get("regions", ["*"])
        if not isinstance(regions, list) or not regions or not all(
                isinstance(r, str) and (r == "*" or re.fullmatch(r"\d{2,6}", r)) for r in regions):
            raise PeersError(f'{where}.regions: address-code prefixes (2 to 6 digits) or "*"')
        mode = p.get("mode", "sync")
        if mode not in ("sync", "async"):
            raise PeersError(f"{where}.mode: sync or async")
        name = p.get("name", pid)
        if not isinstance(name, str):
            raise PeersError(f"{where}.name: text")
        out.append(Peer(pid, name, url.rstrip("/"), token, key, tuple(regions), mode))
    return tuple(out)


def load_peers(path) -> tuple[Peer, ...]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PeersError(f"cannot read the peers file: {exc.__class__.__name__}") from None
    return parse_peers(doc)


# -- transport --------------------------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    body: object  # the parsed JSON answer (None when it was not JSON)
    raw: bytes


class DciTransport:
    """Signed envelopes to one peer, over HTTPS with its bearer token, through connectors.transport (retries,
    back-off and a circuit breaker per peer; redirects never followed: the token would go along)."""

    def __init__(self, peer: Peer, *, sender_id: str, signing_key: Ed25519PrivateKey, policy: Policy | None = None,
                 http: requests.Session | None = None, breakers: Breakers | None = None):
        self.peer, self.sender_id, self.signing_key = peer, sender_id, signing_key
        self.policy = policy or Policy()
        self.transport = Transport(SOURCE, f"dci:{peer.url}", policy=self.policy, http=http, breakers=breakers,
                                   label=peer.id, follow_redirects=False)

    def envelope(self, header: dict, message) -> dict:
        return env.envelope(header, message, self.signing_key, self.sender_id)

    def post(self, path: str, body: dict, *, url: str | None = None, deadline: float | None = None,
             answers: tuple[int, ...] = (200,), calls: list | None = None) -> Reply:
        """POST a signed envelope to ``path`` under the peer's address (or to ``url``, a callback under it); the
        reply when its status is one of ``answers``, else AgencyError. ``calls`` gets an item for each attempt."""
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Authorization": f"Bearer {self.peer.token}", "Content-Type": "application/json"}
        resp = self.transport.post(url or self.peer.endpoint(path), data, headers, deadline=deadline, answers=answers,
                                   on_attempt=None if calls is None else lambda: calls.append(1))
        try:
            parsed = json.loads(resp.content)
        except (ValueError, RecursionError):
            parsed = None
        return Reply(resp.status_code, parsed, resp.content)

    def verified(self, reply: Reply, action: str) -> tuple[dict, object]:
        """(header, message) of a signed answer from the peer; AgencyError(BAD_RESPONSE) when it is not one, or its
        signature is not the peer's."""
        body = reply.body
        if not isinstance(body, dict) or not isinstance(body.get("header"), dict):
            raise AgencyError(SOURCE, Failure.BAD_RESPONSE, f"{self.peer.id}: not a DCI envelope")
        header, message = body["header"], body.get("message")
        try:
            env.verify(header, message, body.get("signature"), self.peer.public_key, self.peer.id)
        except env.DciError as exc:
            raise AgencyError(SOURCE, Failure.BAD_RESPONSE, f"{self.peer.id}: {exc.code}") from None
        if header.get("action") != action or header.get("sender_id", self.peer.id) != self.peer.id \
                or header.get("receiver_id", self.sender_id) != self.sender_id:
            raise AgencyError(SOURCE, Failure.BAD_RESPONSE, f"{self.peer.id}: an envelope for another exchange")
        return header, message


# -- the source -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Basis:
    """What a question to a peer carries: the entrustment (``authorize``) and, per person, their authorization
    (``consent``), as the hub holds them for the request."""

    authorize: dict
    consents: dict[str, dict]  # person_ref -> consent object


class Hooks(Protocol):
    """What the source needs from the hub (hub.federation.client): the basis of a request, the ledger entry of each
    exchange, and for asynchronous peers, the bookkeeping of the callback."""

    def basis(self, request_id: str, allows: Sequence[Allow], id_numbers: dict[str, str]) -> Basis: ...

    def exchanged(self, peer: Peer, request_id: str, entry: dict) -> None: ...

    def expect(self, peer: Peer, header: dict, message: dict, callback: str) -> None: ...

    def awaited(self, peer: Peer, transaction_id: str, deadline: float) -> dict | None: ...

    def callback_uri(self, path: str) -> str: ...


def _reply_rows(records, ids_by_ref: dict[str, str], ref: str, peer: Peer) -> list[dict]:
    """Canonical rows (one per record) of a peer's Member records for the person ``ref``."""
    rows = []
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict):
            continue
        hub = record.get("hub_record") if isinstance(record.get("hub_record"), dict) else {}
        prov = record.get("registry_record") if isinstance(record.get("registry_record"), dict) else {}
        members = hub.get("members") if isinstance(hub.get("members"), list) else []
        member = next((m for m in members if isinstance(m, dict)), {})
        facts = hub.get("facts") if isinstance(hub.get("facts"), dict) else {}
        income = [f for f in facts.get("income") or [] if isinstance(f, dict)] if isinstance(
            facts.get("income"), list) else []
        amounts = [f.get("amount") for f in income]
        assessment = hub.get("assessment") if isinstance(hub.get("assessment"), dict) else {}
        screening = assessment.get("screening") if isinstance(assessment.get("screening"), dict) else {}
        groups = record.get("group_identifier") if isinstance(record.get("group_identifier"), list) else []
        group = next((g.get("identifier_value") for g in groups if isinstance(g, dict)), None)
        income_out = assessment.get("income") if isinstance(assessment.get("income"), dict) else {}

        def answer(programme):
            value = screening.get(programme)
            return value.get("answer") if isinstance(value, dict) else None

        rows.append({
            "id_number": ids_by_ref[ref],
            "registry": peer.id,
            "household_ref": group,
            "record_version": prov.get("household_version"),
            "record_as_of": prov.get("as_of"),
            "record_sha256": prov.get("content_sha256"),
            "status": record.get("registration_status", member.get("status")),
            "relation": record.get("relationship_head", member.get("relation")),
            "division_code": (hub.get("division") or {}).get("code") if isinstance(hub.get("division"), dict)
            else None,
            "income_total": (round(sum(amounts), 2) if all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                                            for a in amounts) else amounts) if income else None,
            "income_months": len({f.get("period") for f in income if isinstance(f.get("period"), str)})
            if income else None,
            "members_counted": assessment.get("members_counted"),
            "income_per_capita": income_out.get("monthly_per_capita"),
            "dibao": answer("dibao"), "low_income": answer("low_income"), "tekun": answer("tekun"),
            "expenditure_poverty": answer("expenditure_poverty"),
        })
    return rows


class RemoteRegistrySource:
    """The ``remote_registry`` source: members asked of federated peers by DCI search."""

    key = SOURCE

    def __init__(self, peers: Sequence[Peer], *, sender_id: str, signing_key: Ed25519PrivateKey, hooks: Hooks,
                 policy: Policy | None = None, http: requests.Session | None = None, breakers: Breakers | None = None):
        self.peers = tuple(peers)
        self.sender_id, self.hooks = sender_id, hooks
        self.policy = policy or Policy()
        self.transports = {p.id: DciTransport(p, sender_id=sender_id, signing_key=signing_key, policy=self.policy,
                                              http=http, breakers=breakers) for p in self.peers}

    def _message(self, peer: Peer, asked: dict[str, str], basis: Basis) -> tuple[dict, dict[str, str]]:
        items, refs = [], {}
        for ref, idn in asked.items():
            reference = env.new_id()
            refs[reference] = ref
            items.append({"reference_id": reference, "timestamp": env.timestamp(), "search_criteria": {
                "version": env.VERSION, "reg_type": env.REG_TYPE, "reg_record_type": "Member",
                "response_entity": "Member", "query_type": "idtype-value",
                "query": {"type": ID_TYPE, "value": idn},
                "consent": basis.consents[ref], "authorize": basis.authorize}})
        return {"transaction_id": env.new_id(), "search_request": items}, refs

    def _ask(self, peer: Peer, message: dict, deadline: float, calls: list) -> tuple[object, bytes]:
        """The peer's SearchResponse to ``message`` (sync, or async through this hub's callback) and the raw answer."""
        transport = self.transports[peer.id]
        if peer.mode == "sync":
            header = env.request_header("search", sender_id=self.sender_id, receiver_id=peer.id,
                                        total_count=len(message["search_request"]))
            reply = transport.post("/registry/sync/search", transport.envelope(header, message), deadline=deadline,
                                   calls=calls)
            _header, answer = transport.verified(reply, "on-search")
            return answer, reply.raw
        callback = self.hooks.callback_uri("/registry/on-search")
        header = env.request_header("search", sender_id=self.sender_id, receiver_id=peer.id,
                                    total_count=len(message["search_request"]), sender_uri=callback)
        self.hooks.expect(peer, header, message, callback)
        reply = transport.post("/registry/search", transport.envelope(header, message), deadline=deadline,
                               calls=calls)
        ack = reply.body.get("message") if isinstance(reply.body, dict) else None
        if not isinstance(ack, dict) or ack.get("ack_status") != "ACK":
            raise AgencyError(SOURCE, Failure.BAD_RESPONSE, f"{peer.id}: the search was not acknowledged")
        answer = self.hooks.awaited(peer, message["transaction_id"], deadline)
        if answer is None:
            raise AgencyError(SOURCE, Failure.DEADLINE, f"{peer.id}: no on-search callback in time")
        return answer, json.dumps(answer, ensure_ascii=False, sort_keys=True).encode("utf-8")

    def fetch(self, allows: Sequence[Allow], id_numbers: dict[str, str], auth_ref: str, *,
              still_allowed: StillAllowed | None = None) -> FetchResult:
        """Ask the peers about the persons of ``allows`` (``id_numbers``: person_ref -> ID number; ``auth_ref``: the
        request). ``still_allowed`` asks the gate again before each search (connectors.base.Source.fetch)."""
        for a in allows:
            if not isinstance(a, Allow) or a.source != self.key:
                raise TypeError(f"{self.key}: fetch needs the gate's Allow decisions for this source")
        wanted = {a.person_ref: id_numbers[a.person_ref] for a in allows}
        allow_of = {a.person_ref: a for a in allows}
        result = FetchResult(source=self.key, status="complete", requested=len(wanted))
        if not self.peers:
            result.status, result.reason = "unavailable", "NO_PEERS"
            result.unanswered = set(wanted.values())
            return result
        basis = self.hooks.basis(auth_ref, allows, id_numbers)
        digest = hashlib.sha256()
        deadline = time.monotonic() + self.policy.deadline
        remaining = dict(wanted)
        failed: set[str] = set()  # asked of a peer that failed
        refused: set[str] = set()  # a peer refused the question
        calls: list = []
        failures: list[str] = []
        for peer in self.peers:
            asked_all = {ref: idn for ref, idn in remaining.items() if peer.covers(idn)}
            refs_list = list(asked_all)
            for start in range(0, len(refs_list), MAX_ITEMS):
                asked = {ref: asked_all[ref] for ref in refs_list[start: start + MAX_ITEMS]}
                if still_allowed is not None:
                    held = {a.person_ref for a in still_allowed([allow_of[ref] for ref in asked])}
                    for ref in [ref for ref in asked if ref not in held]:
                        result.withdrawn.add(asked.pop(ref))
                        remaining.pop(ref, None), wanted.pop(ref, None)
                    if not asked:
                        continue
                message, by_reference = self._message(peer, asked, basis)
                entry = {"peer": peer.id, "mode": peer.mode, "transaction_id": message["transaction_id"],
                         "persons": sorted(asked)}
                try:
                    answer, raw = self._ask(peer, message, deadline, calls)
                    items = answer.get("search_response") if isinstance(answer, dict) else None
                    if not isinstance(items, list) or answer.get("transaction_id") != message["transaction_id"]:
                        raise AgencyError(SOURCE, Failure.BAD_RESPONSE, f"{peer.id}: not a SearchResponse")
                except AgencyError as exc:
                    log.warning("DCI search at %s failed: %s", peer.id, exc.failure.value)
                    failed.update(asked)
                    failures.append(exc.failure.value)
                    self.hooks.exchanged(peer, auth_ref, {**entry, "failure": exc.failure.value})
                    continue
                digest.update(raw)
                result.raw.append(raw)
                outcome = {}
                for item in items:
                    ref = by_reference.get(item.get("reference_id")) if isinstance(item, dict) else None
                    if ref is None or ref in outcome:
                        continue
                    if item.get("status") == "succ":
                        data = item.get("data") if isinstance(item.get("data"), dict) else {}
                        rows = _reply_rows(data.get("reg_records"), asked, ref, peer)
                        result.rows.extend(rows)
                        outcome[ref] = "found" if rows else "none"
                        if rows:
                            remaining.pop(ref, None)
                            failed.discard(ref)
                            refused.discard(ref)
                    else:
                        outcome[ref] = str(item.get("status_reason_code") or item.get("status"))[:64]
                        refused.add(ref)
                for ref in asked:
                    if ref not in outcome:  # the peer left a question unanswered
                        outcome[ref] = "unanswered"
                        failed.add(ref)
                self.hooks.exchanged(peer, auth_ref, {
                    **entry, "correlation_id": answer.get("correlation_id") if env.safe_ref(
                        answer.get("correlation_id")) else None,
                    "response_sha256": hashlib.sha256(raw).hexdigest(),
                    "outcomes": {ref: outcome[ref] for ref in sorted(outcome)}})
        result.calls = len(calls)
        result.requested = len(wanted)
        result.response_sha256 = digest.hexdigest()
        unanswered = {ref for ref in remaining if ref in failed or ref in refused}
        result.unanswered = {wanted[ref] for ref in unanswered}
        result.not_found = {wanted[ref] for ref in remaining if ref not in unanswered}
        result.missing = len(unanswered)
        if unanswered:
            answered_any = bool(result.rows) or len(unanswered) < len(wanted)
            result.status = "incomplete" if answered_any else "unavailable"
            result.reason = failures[0] if failures and (remaining.keys() & failed) else "REMOTE_REFUSED"
        return result
