"""The hub as a DCI client: the ``remote_registry`` source wired to the store, the keys and the ledger, and the
messages the hub sends peers on its own (asynchronous search, subscribe, unsubscribe, transaction status).

What a question to a peer carries for a member the gate allowed:

- ``authorize``: the department's entrustment: purpose, and as ``case_ref`` ``<department>/<application id>`` (the
  same for the application and its re-checks, so the peer finds its record of the case again);
- ``consent``: the member's authorization as this hub holds it (validity, their consent to ``remote_registry``,
  the hash of their signed form, or for a minor the guardian who covers them), for that member alone.

Every exchange is a ledger entry (``dci.sent``: the peer, its transaction id, the persons by pseudonym, what came
back); the asynchronous answers arrive on this hub's callbacks (hub.dci.service) and are kept encrypted with the
exchange they answer.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Sequence

from sqlalchemy import select

from connectors import envelope as env
from connectors.base import Policy
from connectors.dci_remote import SOURCE, Basis, DciTransport, Peer, RemoteRegistrySource
from consent import ledger
from consent.gate import Allow
from core.crypto import keyring
from core.store import (
    Authorization,
    AuthorizationMember,
    DciTransaction,
    Request,
    RequestMember,
    aad_dci,
    aad_member,
    session,
    utcnow,
)
from hub.federation import config
from schemas.vocabulary import FINANCIAL_SOURCES, PURPOSES


def member_id_numbers(s, request_id: str) -> dict[str, str]:
    """person_ref -> ID number of the members a request names (decrypted; never logged or returned by a stage)."""
    keys = keyring()
    members = s.scalars(select(RequestMember).where(RequestMember.request_id == request_id)).all()
    return {m.person_ref: keys.decrypt(m.id_number_enc, aad=aad_member(request_id, "id_number_enc", m.person_ref))
            for m in members}


def case_ref(req: Request) -> str:
    """The entrustment as peers know it: the department and the application (a re-check's is its application's);
    the application alone when a department's code is too long for a peer's 64 characters."""
    ref = f"{req.department}/{req.parent_id or req.id}"
    return ref if len(ref) <= 64 else req.parent_id or req.id


def authorize_for(req: Request, now: dt.datetime | None = None) -> dict:
    return {"@type": "Authorize", "ts": env.timestamp(now), "purpose": {"code": req.purpose,
                                                                         "text": PURPOSES[req.purpose]},
            "case_ref": case_ref(req)}


def _consent_entry(m: AuthorizationMember, ids: dict[str, str], *, own: bool) -> dict:
    sources = [SOURCE] if SOURCE in m.sources else [s for s in m.sources if s not in FINANCIAL_SOURCES][:1]
    entry = {"id_number": ids[m.person_ref], "sources": sources}
    if m.evidence_sha256:
        entry["evidence_sha256"] = m.evidence_sha256
    elif own and m.guardian_ref:
        entry["guardian_id_number"] = ids[m.guardian_ref]
    return entry


def consent_for(s, auth: Authorization, person_ref: str, ids: dict[str, str]) -> dict:
    """The consent object for one person: their part of the authorization (and their guardian's, for a minor)."""
    members = {m.person_ref: m for m in s.scalars(select(AuthorizationMember)
                                                  .where(AuthorizationMember.authorization_id == auth.id))}
    member = members[person_ref]
    consents = [_consent_entry(member, ids, own=True)]
    if not member.evidence_sha256 and member.guardian_ref in members:
        consents.append(_consent_entry(members[member.guardian_ref], ids, own=False))
    return {"@type": "Consent", "ts": env.timestamp(auth.created_at), "purpose": {"code": auth.purpose},
            "authorization": {"valid_from": auth.valid_from.isoformat(), "valid_until": auth.valid_until.isoformat(),
                              "recheck_interval_days": auth.recheck_interval_days,
                              "data_life_days": auth.data_life_days, "consents": consents}}


class HubHooks:
    """What connectors.dci_remote needs from the hub."""

    def basis(self, request_id: str, allows: Sequence[Allow], id_numbers: dict[str, str]) -> Basis:
        with session() as s:
            req = s.get(Request, request_id)
            ids = member_id_numbers(s, request_id)
            consents = {}
            for a in allows:
                auth = s.get(Authorization, a.authorization_id)
                consents[a.person_ref] = consent_for(s, auth, a.person_ref, ids)
            return Basis(authorize_for(req), consents)

    def exchanged(self, peer: Peer, request_id: str, entry: dict) -> None:
        with session() as s:
            ledger.append(s, "dci.sent", {"operation": "sync_search" if entry.get("mode") == "sync" else "search",
                                          "request_id": request_id, "source": SOURCE, **entry})

    def expect(self, peer: Peer, header: dict, message: dict, callback: str) -> None:
        with session() as s:
            s.add(DciTransaction(id=env.new_id(), direction="out", platform=peer.id, client_id=None,
                                 operation="search", mode="async", transaction_id=message["transaction_id"],
                                 message_id=header["message_id"], status="pdng",
                                 items=[{"reference_id": i["reference_id"]} for i in message["search_request"]],
                                 callback_uri=callback, attempts=0, created_at=utcnow()))

    def awaited(self, peer: Peer, transaction_id: str, deadline: float) -> dict | None:
        # the answer's records go on as the fetch's raw answer (kept for the data life, then purged): not kept here
        return awaited(peer.id, transaction_id, "search", deadline, consume=True)

    def callback_uri(self, path: str) -> str:
        return config.public_url() + path


def awaited(platform: str, transaction_id: str, operation: str, deadline: float, poll_s: float = 0.1, *,
            consume: bool = False) -> dict | None:
    """The answer a peer sent back on this hub's callback for an exchange, once it has (None at the deadline);
    ``consume``: the stored copy is dropped once read."""
    while True:
        with session() as s:
            txn = s.scalars(select(DciTransaction).where(
                DciTransaction.direction == "out", DciTransaction.platform == platform,
                DciTransaction.operation == operation, DciTransaction.transaction_id == transaction_id)).first()
            if txn is not None and txn.status in ("succ", "rjct"):
                if txn.payload_enc is None:
                    return {"transaction_id": transaction_id}
                answer = json.loads(keyring().decrypt(txn.payload_enc, aad=aad_dci(txn.id)))
                if consume:
                    txn.payload_enc = None
                return answer
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)


def remote_registry(policy: Policy | None = None) -> RemoteRegistrySource:
    """The ``remote_registry`` connector with the configured peers (none when HUB_DCI_PEERS is unset)."""
    return RemoteRegistrySource(config.peers(), sender_id=config.platform_id(), signing_key=keyring().signing_key,
                                hooks=HubHooks(), policy=policy)


def transport(peer_id: str, policy: Policy | None = None) -> DciTransport:
    peer = config.peer(peer_id)
    if peer is None:
        raise LookupError(f"no peer {peer_id} in HUB_DCI_PEERS")
    return DciTransport(peer, sender_id=config.platform_id(), signing_key=keyring().signing_key, policy=policy)


# -- messages the hub sends on its own -------------------------------------------------------------------------------
PATHS = {("search", False): ("/registry/search", "on-search"), ("search", True): ("/registry/sync/search", "on-search"),
         ("subscribe", False): ("/registry/subscribe", "on-subscribe"),
         ("unsubscribe", False): ("/registry/unsubscribe", "on-unsubscribe"),
         ("txn-status", False): ("/registry/txn/status", "txn-on-status"),
         ("txn-status", True): ("/registry/sync/txn/status", "txn-on-status")}


def send(peer_id: str, operation: str, message: dict, *, sync: bool, total_count: int = 1,
         request_id: str | None = None, persons: Sequence[str] = ()) -> dict:
    """Send one message to a peer and log it. Synchronous: the verified answer's message. Asynchronous: the
    acknowledgement (the answer comes on this hub's callback; ``outcome`` reads it)."""
    path, reply_action = PATHS[(operation, sync)]
    t = transport(peer_id)
    callback = None if sync else config.public_url() + config.CALLBACK_PATHS[reply_action]
    header = env.request_header(operation, sender_id=config.platform_id(), receiver_id=peer_id,
                                total_count=total_count, sender_uri=callback)
    if not sync:
        with session() as s:
            s.add(DciTransaction(id=env.new_id(), direction="out", platform=peer_id, client_id=None,
                                 operation=operation, mode="async", transaction_id=message["transaction_id"],
                                 message_id=header["message_id"], status="pdng", items=[], callback_uri=callback,
                                 attempts=0, created_at=utcnow()))
    entry = {"operation": operation if not sync else f"sync_{operation}", "peer": peer_id, "mode": "sync" if sync
             else "async", "transaction_id": message["transaction_id"], "request_id": request_id,
             "persons": sorted(persons)}
    try:
        reply = t.post(path, t.envelope(header, message))
        if sync:
            _header, answer = t.verified(reply, reply_action)
            result = answer if isinstance(answer, dict) else {}
        else:
            result = reply.body if isinstance(reply.body, dict) else {}
    except Exception as exc:
        with session() as s:
            ledger.append(s, "dci.sent", {**entry, "failure": getattr(getattr(exc, "failure", None), "value",
                                                                       exc.__class__.__name__)})
        raise
    with session() as s:
        ack = result.get("message", {}).get("ack_status") if not sync and isinstance(result.get("message"), dict) \
            else None
        ledger.append(s, "dci.sent", {**entry, "ack": ack, "http": reply.status})
    return result


def outcome(peer_id: str, transaction_id: str, operation: str, *, timeout_s: float = 10.0) -> dict | None:
    """The answer of an asynchronous exchange, waiting up to ``timeout_s`` for the peer's callback."""
    return awaited(peer_id, transaction_id, operation, time.monotonic() + timeout_s)


def subscribe(peer_id: str, request_id: str, person_ref: str, *, event: str = "REGISTER",
              record_type: str = "Group") -> str:
    """Follow, at a peer, the household of a member of a request (the peer must have answered a search for them
    under this request's case); returns the transaction id (the subscription code comes on on-subscribe)."""
    with session() as s:
        req = s.get(Request, request_id)
        idn = member_id_numbers(s, request_id)[person_ref]
        authorize = authorize_for(req)
    tid = env.new_id()
    message = {"transaction_id": tid, "subscribe_request": [{
        "reference_id": env.new_id(), "timestamp": env.timestamp(), "subscribe_criteria": {
            "version": env.VERSION, "reg_type": env.REG_TYPE, "reg_event_type": event,
            "filter_type": "idtype-value", "filter": {"type": "NationalID", "value": idn},
            "notify_record_type": record_type, "authorize": authorize}}]}
    send(peer_id, "subscribe", message, sync=False, request_id=request_id, persons=[person_ref])
    return tid


def unsubscribe(peer_id: str, codes: list[str]) -> str:
    tid = env.new_id()
    send(peer_id, "unsubscribe", {"transaction_id": tid, "timestamp": env.timestamp(), "subscription_codes": codes},
         sync=False)
    return tid


def txn_status(peer_id: str, transaction_id: str, *, txn_type: str = "search", sync: bool = True) -> dict | str:
    """The status of an exchange at a peer: its answer (sync), or the transaction id of the query (async)."""
    tid = env.new_id()
    message = {"transaction_id": tid, "txnstatus_request": {
        "reference_id": env.new_id(), "txn_type": txn_type, "attribute_type": "transaction_id",
        "attribute_value": transaction_id}}
    answer = send(peer_id, "txn-status", message, sync=sync)
    return answer if sync else tid
