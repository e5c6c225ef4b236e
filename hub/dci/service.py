"""What the hub does with each DCI message a federated platform sends it: the envelope checked, the message
answered, every exchange (and every refusal) a ledger entry.

The order of checks, and the answer of each failure (the spec's codes; ``Error.code`` values, with the header's
``MsgHeaderStatusReasonCode`` where one applies):

    bearer token missing or invalid            401  err.request.unauthorized        (HttpErrorResponse)
    the token is not a federated platform's    403  err.request.forbidden           (HttpErrorResponse)
    over the rate limit                        429  err.request.too_many_requests   (with Retry-After)
    not UTF-8 JSON, over 1 MiB, no header,     400  err.request.bad
      a message that is not an object, a message of the wrong shape
    no signature                               401  err.signature.missing           (HttpErrorResponse)
    a malformed, expired or wrong signature,   401  err.signature.invalid           (HttpErrorResponse)
      or one by a key not registered for the platform
    header.sender_id not the token's platform  403  err.sender_id.invalid           (HttpErrorResponse)
    header.receiver_id not this hub            400  err.receiver_id.invalid
    header.version not 1.0.0                   400  err.version.not_supported       rjct.version.invalid
    header.action not this endpoint's          400  err.request.bad                 rjct.action.invalid
    header.message_ts not within 5 minutes     400  err.request.bad                 rjct.message_ts.invalid
    header.message_id used before (a replay)   400  err.request.bad                 rjct.message_id.duplicate
    header.total_count not the item count      400  err.request.bad                 rjct.total_count.invalid
    more than 20 items                         400  err.request.bad                 rjct.total_count.limit_exceeded
    an encrypted message (JWE)                 400  err.encryption.invalid
    sender_uri not under the platform's        400  err.sender_uri.invalid
      registered address (or none registered)
    a callback for no exchange of this hub     404  err.request.not_found

Those answers take the endpoint's own form: the acknowledgement with ``ack_status`` ERR (asynchronous endpoints
and callbacks), or for the synchronous ones a signed envelope whose header has status ``rjct``, the header reason
code and ``"<err code>: <why>"`` as its message, and ``errors`` as in HttpErrorResponse. A message that passes is
acknowledged (ACK) or answered; problems of one search item (no consent, an unknown query type, a refusal of the
consent gate...) are that item's ``rjct`` with a SearchStatusReasonCode (hub.dci.search). Nothing here answers 500:
an unexpected failure is 503 err.service.unavailable, logged by its class only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connectors import envelope as env
from connectors.envelope import DciError
from consent import ledger
from core.crypto import canonical_json, keyring, sha256_hex
from core.documents import DocumentError, read_document
from core.store import DciTransaction, aad_dci, session
from hub.dci.search import Context, search_item
from hub.dci.subscriptions import subscribe_item, unsubscribe
from hub.federation import config

log = logging.getLogger(__name__)

MAX_ITEMS = 20
SEARCH_REASONS = ("rjct.reference_id.invalid", "rjct.reference_id.duplicate", "rjct.timestamp.invalid",
                  "rjct.search_criteria.invalid", "rjct.filter.invalid", "rjct.sort.invalid",
                  "rjct.pagination.invalid", "rjct.search.too_many_records_found")


@dataclass(frozen=True)
class Op:
    name: str
    path: str
    action: str  # the header.action this endpoint takes
    sync: bool
    reply: str | None  # the action of the answer (sync) or of the callback (async); None for callbacks received
    callback_header: bool = False  # the spec gives this endpoint a MsgCallbackHeader (sender_id optional, status)
    message_required: bool = True
    summary: str = ""


OPS = {o.name: o for o in (
    Op("search", "/registry/search", "search", False, "on-search",
       summary="asynchronous search: acknowledged, answered on the platform's /registry/on-search"),
    Op("sync_search", "/registry/sync/search", "search", True, "on-search", summary="synchronous search"),
    Op("subscribe", "/registry/subscribe", "subscribe", False, "on-subscribe",
       summary="subscribe to a household's record events: acknowledged, answered on /registry/on-subscribe"),
    Op("unsubscribe", "/registry/unsubscribe", "unsubscribe", False, "on-unsubscribe",
       summary="end subscriptions: acknowledged, answered on /registry/on-unsubscribe"),
    Op("txn_status", "/registry/txn/status", "txn-status", False, "txn-on-status",
       summary="the status of an exchange: acknowledged, answered on /registry/txn/on-status"),
    Op("sync_txn_status", "/registry/sync/txn/status", "txn-status", True, "txn-on-status",
       summary="the status of an exchange, answered at once"),
    Op("on_search", "/registry/on-search", "on-search", False, None, callback_header=True, message_required=False,
       summary="a peer's answer to this hub's asynchronous search"),
    Op("on_subscribe", "/registry/on-subscribe", "on-subscribe", False, None,
       summary="a peer's answer to this hub's subscription"),
    Op("on_unsubscribe", "/registry/on-unsubscribe", "on-unsubscribe", False, None,
       summary="a peer's answer to this hub's unsubscription"),
    Op("txn_on_status", "/registry/txn/on-status", "txn-on-status", False, None, callback_header=True,
       message_required=False, summary="a peer's answer to this hub's status query"),
    Op("notify", "/registry/notify", "notify", False, None, callback_header=True, message_required=False,
       summary="a peer's notification of a record event this hub subscribed to"),
)}
CALLBACK_PATHS = config.CALLBACK_PATHS


@dataclass
class Answer:
    status: int
    body: dict
    deliver: str | None = None  # an asynchronous answer to send once this one is out (its transaction)


def bad(detail: str, header_code: str | None = None) -> DciError:
    return DciError("err.request.bad", detail, header_code=header_code)


def parse_body(raw: bytes):
    """The body as the hub reads every JSON document from outside (core.documents: UTF-8, no NaN, nested at most
    32 levels), in DCI's error form."""
    if len(raw) > env.MAX_BODY_BYTES:
        raise bad("the body is larger than 1 MiB")
    try:
        doc = read_document(raw)
        canonical_json(doc)  # what the signature is over: text a lone surrogate ("\ud800") makes not Unicode
    except DocumentError as exc:
        raise bad(f"the body is not UTF-8 JSON the hub reads: {exc}") from None
    except (UnicodeError, ValueError):
        raise bad("the body is not UTF-8 JSON") from None
    return doc


def open_envelope(op: Op, client, raw: bytes, now, hub_id: str) -> tuple[dict, dict | None]:
    """(header, message) of a message that passes every check of the envelope; DciError otherwise."""
    doc = parse_body(raw)
    if not isinstance(doc, dict):
        raise bad("the body is an object: {signature, header, message}")
    header, message = doc.get("header"), doc.get("message")
    if not isinstance(header, dict):
        raise bad("header: an object is required")
    if ("message" in doc and not isinstance(message, dict)) or (op.message_required and message is None):
        raise bad("message: an object is required")
    try:
        key = env.load_public_key(client.public_key or "")
    except ValueError:
        raise DciError("err.signature.invalid", "no Ed25519 key is registered for this platform", status=401) from None
    env.verify(header, message, doc.get("signature"), key, client.department, now=now)
    check_header(op, client, header, now, hub_id)
    if env.is_encrypted(message):
        raise DciError("err.encryption.invalid", "encrypted messages are not accepted: this hub takes them in clear "
                       "over TLS")
    return header, message


def check_header(op: Op, client, header: dict, now, hub_id: str) -> None:
    if header.get("version", env.VERSION) != env.VERSION:
        raise DciError("err.version.not_supported", f"header.version: {env.VERSION}",
                       header_code="rjct.version.invalid")
    if not env.safe_ref(header.get("message_id")):
        raise bad("header.message_id: up to 99 letters, digits and ._:@+=/-")
    ts = env.parse_ts(header.get("message_ts"))
    if ts is None or abs((now - ts).total_seconds()) > env.MESSAGE_TS_WINDOW_S:
        raise bad("header.message_ts: an ISO 8601 date-time with its offset, within five minutes of this hub's clock",
                  "rjct.message_ts.invalid")
    if header.get("action") != op.action:
        raise bad(f"header.action: {op.action} at this address", "rjct.action.invalid")
    sender = header.get("sender_id")
    if sender is None and not op.callback_header:
        raise bad("header.sender_id is required")
    if sender is not None and sender != client.department:
        raise DciError("err.sender_id.invalid", "header.sender_id is not the authenticated platform", status=403)
    receiver = header.get("receiver_id")
    if receiver is not None and receiver != hub_id:
        raise DciError("err.receiver_id.invalid", "header.receiver_id is not this hub")
    count = header.get("total_count")
    if (count is not None or not op.callback_header) and (not isinstance(count, int) or isinstance(count, bool)
                                                          or count < 0):
        raise bad("header.total_count: a whole number", "rjct.total_count.invalid")
    if op.callback_header and header.get("status") not in env.STATUSES:
        raise bad(f"header.status: one of {', '.join(env.STATUSES)}")
    if header.get("is_msg_encrypted", False) is not False:
        if header.get("is_msg_encrypted") is True:
            raise DciError("err.encryption.invalid", "encrypted messages are not accepted: this hub takes them in "
                           "clear over TLS")
        raise bad("header.is_msg_encrypted: a boolean")
    if "meta" in header and not isinstance(header["meta"], dict):
        raise bad("header.meta: an object")


def callback_for(op: Op, client, header: dict) -> str:
    """Where the asynchronous answer goes: the header's sender_uri, under the address registered for the platform
    (its entry in HUB_DCI_PEERS), or that address's default callback."""
    peer = config.peer(client.department)
    if peer is None:
        raise DciError("err.sender_uri.invalid", "no callback address is registered for this platform: ask "
                       "synchronously, or have it added to this hub's peers")
    uri = header.get("sender_uri")
    if uri is None:
        return peer.endpoint(CALLBACK_PATHS[op.reply])
    if not isinstance(uri, str) or len(uri) > 2048 or not peer.owns(uri):
        raise DciError("err.sender_uri.invalid", "header.sender_uri: not under the address registered for this "
                       "platform")
    return uri


def _items(header: dict, items, what: str) -> list:
    if not isinstance(items, list) or not items:
        raise bad(f"message.{what}: a non-empty list")
    if len(items) > MAX_ITEMS:
        raise bad(f"message.{what}: at most {MAX_ITEMS} items", "rjct.total_count.limit_exceeded")
    if header.get("total_count") != len(items):
        raise bad(f"header.total_count: the number of items in message.{what}", "rjct.total_count.invalid")
    return items


def _transaction_id(message: dict) -> str:
    tid = message.get("transaction_id")
    if not env.safe_ref(tid):
        raise bad("message.transaction_id: up to 99 letters, digits and ._:@+=/-")
    return tid


def _new_transaction(s, op: Op, client, header: dict, tid: str, operation: str, now, callback: str | None = None,
                     direction: str = "in") -> DciTransaction:
    if s.scalars(select(DciTransaction.id).where(DciTransaction.direction == direction,
                                                 DciTransaction.platform == client.department,
                                                 DciTransaction.message_id == header["message_id"])).first():
        raise bad("header.message_id: used before; a replayed message is refused", "rjct.message_id.duplicate")
    txn = DciTransaction(id=env.new_id(), direction=direction, platform=client.department, client_id=client.id,
                         operation=operation, mode="sync" if op.sync else "async", transaction_id=tid,
                         message_id=header["message_id"], status="rcvd", items=[], callback_uri=callback,
                         delivery="pending" if callback else None, attempts=0,
                         next_attempt_at=now if callback else None, created_at=now)
    s.add(txn)
    s.flush()
    return txn


def _seal(keys, txn: DciTransaction, message: dict) -> None:
    txn.payload_enc = keys.encrypt(json.dumps(message, ensure_ascii=False), aad=aad_dci(txn.id))


def _reply(op: Op, client, hub_id: str, message: dict, status: str, items: int) -> dict:
    header = env.callback_header(op.reply, status=status, sender_id=hub_id, receiver_id=client.department,
                                 total_count=items)
    return env.envelope(header, message, keyring().signing_key, hub_id)


# -- the registry's operations --------------------------------------------------------------------------------------
def handle_search(op: Op, client, header: dict, message: dict, now, hub_id: str) -> Answer:
    tid = _transaction_id(message)
    items = _items(header, message.get("search_request"), "search_request")
    callback = None if op.sync else callback_for(op, client, header)
    keys = keyring()
    with session() as s:
        txn = _new_transaction(s, op, client, header, tid, "search", now, callback)
        ctx = Context(client.id, client.department, hub_id, now, keys)
        seen: set = set()
        out, kept = [], []
        for item in items:
            answer, summary = search_item(s, ctx, item, seen)
            out.append(answer)
            kept.append({"reference_id": summary["reference_id"], "status": summary["status"],
                         "reason": summary.get("reason"), "records": summary.get("returned", 0)})
            ledger.append(s, "dci.search", {"client_id": client.id, "platform": client.department,
                                            "correlation_id": txn.id, "transaction_id": tid, "mode": txn.mode,
                                            **summary})
        response = {"transaction_id": tid, "correlation_id": txn.id, "search_response": out}
        txn.items, txn.completed_at = kept, now
        txn.status = "succ" if any(k["status"] == "succ" for k in kept) else "rjct"
        if callback:
            _seal(keys, txn, response)
    if op.sync:
        return Answer(200, _reply(op, client, hub_id, response, "succ", len(out)))
    return Answer(200, env.ack(txn.id), deliver=txn.id)


def handle_subscribe(op: Op, client, header: dict, message: dict, now, hub_id: str) -> Answer:
    tid = _transaction_id(message)
    items = _items(header, message.get("subscribe_request"), "subscribe_request")
    callback = callback_for(op, client, header)
    keys = keyring()
    with session() as s:
        txn = _new_transaction(s, op, client, header, tid, "subscribe", now, callback)
        ctx = Context(client.id, client.department, hub_id, now, keys)
        seen: set = set()
        out, kept = [], []
        for item in items:
            answer, summary = subscribe_item(s, ctx, item, seen)
            out.append(answer)
            kept.append({"reference_id": summary["reference_id"], "status": summary["status"],
                         "reason": summary.get("reason")})
            ledger.append(s, "dci.subscribe", {"client_id": client.id, "platform": client.department,
                                               "correlation_id": txn.id, "transaction_id": tid, **summary})
        response = {"transaction_id": tid, "correlation_id": txn.id, "subscribe_response": out}
        txn.items, txn.completed_at = kept, now
        txn.status = "succ" if any(k["status"] == "succ" for k in kept) else "rjct"
        _seal(keys, txn, response)
    return Answer(200, env.ack(txn.id), deliver=txn.id)


def handle_unsubscribe(op: Op, client, header: dict, message: dict, now, hub_id: str) -> Answer:
    tid = _transaction_id(message)
    callback = callback_for(op, client, header)
    keys = keyring()
    with session() as s:
        txn = _new_transaction(s, op, client, header, tid, "unsubscribe", now, callback)
        ctx = Context(client.id, client.department, hub_id, now, keys)
        response, summary = unsubscribe(s, ctx, message, txn.id)
        txn.items = [{"reference_id": None, "status": response["status"], "reason": response.get("status_reason_code")}]
        txn.status, txn.completed_at = response["status"], now
        ledger.append(s, "dci.unsubscribe", {"client_id": client.id, "platform": client.department,
                                             "correlation_id": txn.id, "transaction_id": tid,
                                             "reason": response.get("status_reason_code"), **summary})
        _seal(keys, txn, response)
    return Answer(200, env.ack(txn.id), deliver=txn.id)


def _status_items(txn: DciTransaction, references: list[str] | None, now) -> list[dict]:
    out = []
    for item in txn.items or []:
        if references is not None and item.get("reference_id") not in references:
            continue
        entry = {"reference_id": item.get("reference_id") or txn.transaction_id, "timestamp": env.timestamp(now),
                 "status": item.get("status") or txn.status}
        reason = item.get("reason")
        if reason in SEARCH_REASONS:
            entry["status_reason_code"] = reason
        elif reason:
            entry["status_reason_message"] = reason
        out.append(entry)
    return out


def handle_txn_status(op: Op, client, header: dict, message: dict, now, hub_id: str) -> Answer:
    """The status of this platform's own exchanges (never another platform's: those read as unknown). Statuses
    and reason codes only: records are not sent again."""
    tid = _transaction_id(message)
    req = message.get("txnstatus_request")
    if not isinstance(req, dict) or not env.safe_ref(req.get("reference_id")) \
            or req.get("txn_type") not in ("search", "subscribe", "receipt") \
            or req.get("attribute_type") not in ("transaction_id", "reference_id_list", "correlation_id"):
        raise bad("message.txnstatus_request: {reference_id, txn_type: search|subscribe|receipt, attribute_type: "
                  "transaction_id|reference_id_list|correlation_id, attribute_value}")
    value, kind = req.get("attribute_value"), req["attribute_type"]
    if kind == "reference_id_list":
        if not isinstance(value, list) or not 1 <= len(value) <= 100 or not all(env.safe_ref(v) for v in value):
            raise bad("attribute_value: a list of 1 to 100 reference ids")
    elif not env.safe_ref(value):
        raise bad(f"attribute_value: the {kind}")
    callback = None if op.sync else callback_for(op, client, header)
    keys = keyring()
    with session() as s:
        txn = _new_transaction(s, op, client, header, tid, "txn-status", now, callback)
        found: list[DciTransaction] = []
        if req["txn_type"] != "receipt":
            q = select(DciTransaction).where(DciTransaction.direction == "in",
                                             DciTransaction.platform == client.department,
                                             DciTransaction.operation == req["txn_type"])
            if kind == "transaction_id":
                q = q.where(DciTransaction.transaction_id == value)
            elif kind == "correlation_id":
                q = q.where(DciTransaction.id == value)
            found = list(s.scalars(q.order_by(DciTransaction.created_at.desc()).limit(200)))
        references = value if kind == "reference_id_list" else None
        items = [i for t in found for i in _status_items(t, references, now)]
        original = found[0] if len(found) == 1 else None
        if not items:
            items = [{"reference_id": req["reference_id"], "timestamp": env.timestamp(now), "status": "rjct",
                      "status_reason_code": "rjct.reference_id.invalid",
                      "status_reason_message": "no such exchange of this platform" if req["txn_type"] != "receipt"
                      else "this registry issues no receipts"}]
        response = {"transaction_id": tid, "correlation_id": txn.id, "txnstatus_response": {
            "txn_type": req["txn_type"],
            "txn_status": {"transaction_id": original.transaction_id if original else (
                value if kind == "transaction_id" else tid),
                "correlation_id": original.id if original else txn.id, "search_response": items}}}
        txn.items = [{"reference_id": req["reference_id"], "status": "succ", "reason": None}]
        txn.status, txn.completed_at = "succ", now
        ledger.append(s, "dci.txn_status", {"client_id": client.id, "platform": client.department,
                                            "correlation_id": txn.id, "transaction_id": tid, "mode": txn.mode,
                                            "txn_type": req["txn_type"], "attribute_type": kind,
                                            "found": [t.id for t in found]})
        if callback:
            _seal(keys, txn, response)
    if op.sync:
        return Answer(200, _reply(op, client, hub_id, response, "succ", 1))
    return Answer(200, env.ack(txn.id), deliver=txn.id)


# -- callbacks to this hub as a client ------------------------------------------------------------------------------
OUT_OPERATION = {"on_search": "search", "on_subscribe": "subscribe", "on_unsubscribe": "unsubscribe",
                 "txn_on_status": "txn-status"}


def _summary(op: Op, message: dict | None) -> list[dict]:
    """Per reference id: the status and reason a callback reports (safe values only)."""
    if not isinstance(message, dict):
        return []
    key = {"on_search": "search_response", "on_subscribe": "subscribe_response"}.get(op.name)
    if key is None:
        status = message.get("status") if op.name == "on_unsubscribe" else "succ"
        return [{"reference_id": None, "status": status if status in env.STATUSES else None,
                 "reason": message.get("status_reason_code") if env.safe_ref(message.get("status_reason_code"))
                 else None}]
    items = message.get(key)
    if not isinstance(items, list):
        raise bad(f"message.{key}: a list")
    out = []
    for i in items[:100]:
        if not isinstance(i, dict):
            raise bad(f"message.{key}: a list of objects")
        records = (i.get("data") or {}).get("reg_records") if isinstance(i.get("data"), dict) else None
        out.append({"reference_id": i.get("reference_id") if env.safe_ref(i.get("reference_id")) else None,
                    "status": i.get("status") if i.get("status") in env.STATUSES else None,
                    "reason": i.get("status_reason_code") if env.safe_ref(i.get("status_reason_code")) else None,
                    "records": len(records) if isinstance(records, list) else 0})
    return out


def handle_callback(op: Op, client, header: dict, message: dict | None, now, hub_id: str) -> Answer:
    """A peer's answer to this hub's asynchronous message: kept (encrypted) with the exchange it answers."""
    if message is None and header.get("status") != "rjct":
        raise bad("message: an object is required unless header.status is rjct")
    tid = message.get("transaction_id") if isinstance(message, dict) else None
    if message is not None:
        tid = _transaction_id(message)
    keys = keyring()
    with session() as s:
        q = select(DciTransaction).where(DciTransaction.direction == "out",
                                         DciTransaction.platform == client.department,
                                         DciTransaction.operation == OUT_OPERATION[op.name])
        q = q.where(DciTransaction.transaction_id == tid) if tid else q.where(DciTransaction.id.is_(None))
        out = s.scalars(q.limit(1)).first()
        if out is None:
            raise DciError("err.request.not_found", "no exchange of this hub awaits that transaction", status=404)
        items = _summary(op, message)
        received = _new_transaction(s, op, client, header, tid or out.transaction_id, op.action, now)
        received.items, received.status, received.completed_at = items, header.get("status") or "succ", now
        if out.status == "pdng":
            out.status = "rjct" if header.get("status") == "rjct" else "succ"
            out.items, out.completed_at = items, now
            if message is not None:
                _seal(keys, out, message)
        ledger.append(s, f"dci.{op.action}", {
            "client_id": client.id, "platform": client.department, "correlation_id": out.id,
            "transaction_id": out.transaction_id, "status": received.status, "items": items,
            "message_sha256": sha256_hex(canonical_json(message)) if message is not None else None})
    return Answer(200, env.ack(received.id))


def handle_notify(op: Op, client, header: dict, message: dict | None, now, hub_id: str) -> Answer:
    """A peer's notification: kept (encrypted) and logged; the names of what changed, never a value."""
    if message is None:
        raise bad("message: the NotifyEventRequest is required")
    tid = _transaction_id(message)
    events = message.get("notify_event")
    if not isinstance(events, list) or not 1 <= len(events) <= 100 or not all(isinstance(e, dict) for e in events):
        raise bad("message.notify_event: a list of 1 to 100 events")
    summary = []
    for e in events:
        data = e.get("data") if isinstance(e.get("data"), dict) else {}
        records = data.get("reg_records") if isinstance(data.get("reg_records"), dict) else {}
        groups = records.get("group_identifier") if isinstance(records.get("group_identifier"), list) else []
        group = next((g.get("identifier_value") for g in groups if isinstance(g, dict)), None)
        summary.append({"reference_id": e.get("reference_id") if env.safe_ref(e.get("reference_id")) else None,
                        "reg_event_type": data.get("reg_event_type") if env.safe_ref(data.get("reg_event_type"))
                        else None,
                        "subscription_code": records.get("subscription_code")
                        if env.safe_ref(records.get("subscription_code")) else None,
                        "group": group if env.safe_ref(group) else None,
                        "version": records.get("version") if isinstance(records.get("version"), int) else None})
    keys = keyring()
    with session() as s:
        txn = _new_transaction(s, op, client, header, tid, "notify", now)
        txn.items, txn.status, txn.completed_at = summary, "succ", now
        _seal(keys, txn, message)
        ledger.append(s, "dci.notify", {"client_id": client.id, "platform": client.department,
                                        "correlation_id": txn.id, "transaction_id": tid, "events": summary})
    return Answer(200, env.ack(txn.id))


HANDLERS = {"search": handle_search, "sync_search": handle_search, "subscribe": handle_subscribe,
            "unsubscribe": handle_unsubscribe, "txn_status": handle_txn_status, "sync_txn_status": handle_txn_status,
            "on_search": handle_callback, "on_subscribe": handle_callback, "on_unsubscribe": handle_callback,
            "txn_on_status": handle_callback, "notify": handle_notify}


# -- answers ---------------------------------------------------------------------------------------------------------
def error_answer(op: Op, error: DciError, client=None, hub_id: str | None = None) -> Answer:
    """A refusal in the endpoint's form (see the module's doc)."""
    if error.status in (401, 403):
        return Answer(error.status, env.http_errors(error))
    if op.sync:
        hub_id = hub_id or config.platform_id()
        header = env.callback_header(op.reply, status="rjct", sender_id=hub_id,
                                     receiver_id=getattr(client, "department", None), total_count=0,
                                     reason_code=error.header_code, reason_message=f"{error.code}: {error.detail}")
        body = env.envelope(header, None, keyring().signing_key, hub_id)
        return Answer(error.status, {**body, "errors": env.http_errors(error)["errors"]})
    return Answer(error.status, env.ack(env.new_id(), error=error))


def refused(op: Op, client, error: DciError, header) -> None:
    """A refused message of an authenticated platform: a ledger entry (codes and safe ids only)."""
    payload = {"client_id": client.id, "platform": client.department, "operation": op.name, "code": error.code,
               "reason": error.header_code}
    mid = header.get("message_id") if isinstance(header, dict) else None
    if env.safe_ref(mid):
        payload["message_id"] = mid
    with session() as s:
        ledger.append(s, "dci.refused", payload)


def process(name: str, client, raw: bytes) -> Answer:
    """Check and answer one message to the endpoint ``name`` from the authenticated platform ``client``."""
    op = OPS[name]
    now = env.utcnow()
    header = None
    try:
        hub_id = config.platform_id()
        try:
            header, message = open_envelope(op, client, raw, now, hub_id)
            return HANDLERS[name](op, client, header, message, now, hub_id)
        except IntegrityError:  # the same message id, at the same moment, by another worker
            raise bad("header.message_id: used before; a replayed message is refused",
                      "rjct.message_id.duplicate") from None
    except DciError as exc:
        refused(op, client, exc, header)
        return error_answer(op, exc, client)
    except Exception as exc:  # noqa: BLE001 - never a 500, and never the exception's text (it may quote data)
        log.error("DCI %s failed: %s", name, exc.__class__.__name__)
        error = DciError("err.service.unavailable", "the hub could not process the message; try again later",
                         status=503)
        return error_answer(op, error, client)
