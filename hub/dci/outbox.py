"""What the hub sends federated platforms on its own: the answers of their asynchronous messages (on-search,
on-subscribe, on-unsubscribe, txn/on-status) and the notifications of their subscriptions (notify).

Each is stored before it is sent (the transaction's sealed answer; a pending notification), sent signed with the
hub's key and the token the platform issued to it (its entry in HUB_DCI_PEERS), and retried with back-off until the
platform acknowledges it (ACK), at most MAX_ATTEMPTS times; an answer's content (it may hold personal data) is
dropped once delivered. The API sends an answer right after acknowledging the message; `hub dci deliver` and the
``notify_departments`` DAG send whatever is due (retries, and every notification). Each attempt's outcome is a
ledger entry (``dci.callback``, ``dci.notified``), as is a notification the consent gate no longer allows
(``dci.notify_refused``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from sqlalchemy import select

from connectors import envelope as env
from connectors.base import AgencyError, Policy
from connectors.dci_remote import DciTransport
from consent import ledger
from core.crypto import keyring
from core.store import DciNotification, DciSubscription, DciTransaction, Notification, Request, aad_dci, session, utcnow
from hub.dci.search import gate
from hub.dci.subscriptions import fan_out, notify_message
from hub.federation import config

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_S = (10, 30, 60, 300, 900, 3600)
LEASE_S = 120  # an attempt in progress keeps others off the same delivery this long
POLICY = Policy(connect_timeout=3.0, read_timeout=15.0, retries=0, deadline=20.0)
CALLBACK_ACTION = {"search": "on-search", "subscribe": "on-subscribe", "unsubscribe": "on-unsubscribe",
                   "txn-status": "txn-on-status"}


def _transport(peer):
    return DciTransport(peer, sender_id=config.platform_id(), signing_key=keyring().signing_key, policy=POLICY)


def _acknowledged(reply) -> bool:
    message = reply.body.get("message") if isinstance(reply.body, dict) else None
    return isinstance(message, dict) and message.get("ack_status") == "ACK"


def _next(attempts: int, now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=BACKOFF_S[min(attempts - 1, len(BACKOFF_S) - 1)])


def _items_count(message: dict) -> int:
    for key in ("search_response", "subscribe_response", "notify_event"):
        if isinstance(message.get(key), list):
            return len(message[key])
    return 1


def _send(peer, header: dict, message: dict, *, path: str = "", url: str | None = None) -> tuple[str, str]:
    """One attempt: (delivered | retry | failed, the HTTP status or the failure's kind)."""
    if peer is None:
        return "failed", "NO_PEER"
    transport = _transport(peer)
    try:
        reply = transport.post(path, transport.envelope(header, message), url=url, answers=(200, 400, 404))
    except AgencyError as exc:
        return "retry", exc.failure.value
    return ("delivered" if reply.status == 200 and _acknowledged(reply) else "retry"), str(reply.status)


def _settle(row, outcome: str, http: str, now: dt.datetime) -> str:
    """Count an attempt on ``row`` (an answer's transaction or a notification): delivered, due again after the
    back-off, or failed for good (no address, or MAX_ATTEMPTS reached)."""
    row.attempts += 1
    row.last_status = http
    if outcome == "retry" and row.attempts < MAX_ATTEMPTS:
        row.next_attempt_at = _next(row.attempts, now)
        return "retry"
    return "delivered" if outcome == "delivered" else "failed"


def deliver(transaction_id: str, *, now: dt.datetime | None = None) -> str | None:
    """Send one asynchronous answer, if it is due; return its delivery state."""
    now = now or utcnow()
    keys = keyring()
    with session() as s:  # claim it: a concurrent sender finds it leased
        txn = s.get(DciTransaction, transaction_id)
        if txn is None or txn.delivery != "pending" or (txn.next_attempt_at and txn.next_attempt_at > now) \
                or txn.payload_enc is None:
            return txn.delivery if txn else None
        txn.next_attempt_at = now + dt.timedelta(seconds=LEASE_S)
        message = json.loads(keys.decrypt(txn.payload_enc, aad=aad_dci(txn.id)))
        platform, operation, callback, status = txn.platform, txn.operation, txn.callback_uri, txn.status
    peer = config.peer(platform)
    header = env.callback_header(CALLBACK_ACTION[operation], status=status, sender_id=config.platform_id(),
                                 receiver_id=platform, total_count=_items_count(message))
    outcome, http = _send(peer if peer is not None and peer.owns(callback) else None, header, message, url=callback)
    with session() as s:
        txn = s.get(DciTransaction, transaction_id)
        outcome = _settle(txn, outcome, http, now)
        if outcome != "retry":
            txn.delivery = outcome
        if outcome == "delivered":
            txn.payload_enc = None  # the answer is not kept once delivered
        ledger.append(s, "dci.callback", {"correlation_id": txn.id, "platform": platform,
                                          "operation": CALLBACK_ACTION[operation], "delivery": outcome,
                                          "attempts": txn.attempts, "http": http})
    log.info("DCI %s to %s: %s (%s)", CALLBACK_ACTION[operation], platform, outcome, http)
    return "pending" if outcome == "retry" else outcome


def deliver_due(*, now: dt.datetime | None = None, limit: int = 200) -> dict:
    now = now or utcnow()
    with session() as s:
        due = list(s.scalars(select(DciTransaction.id).where(DciTransaction.delivery == "pending",
                                                             DciTransaction.next_attempt_at <= now)
                             .order_by(DciTransaction.created_at).limit(limit)))
    out = {"delivered": 0, "pending": 0, "failed": 0}
    for txn_id in due:
        state = deliver(txn_id, now=now)
        if state in out:
            out[state] += 1
    return out


def notify_due(*, now: dt.datetime | None = None, limit: int = 500) -> dict:
    """Fan the record events of followed households out to their subscriptions, then send what is due: each after
    the consent gate allows it again for the subscription's person and purpose."""
    now = now or utcnow()
    keys = keyring()
    out = {"created": 0, "delivered": 0, "pending": 0, "failed": 0, "refused": 0}
    sends = []
    with session() as s:
        out["created"] = fan_out(s, now)
        s.flush()
        due = s.scalars(select(DciNotification).where(DciNotification.status == "pending",
                                                      DciNotification.next_attempt_at <= now)
                        .order_by(DciNotification.id).limit(limit)).all()
        for n in due:
            sub = s.get(DciSubscription, n.subscription_code)
            note = s.get(Notification, n.notification_id)
            why = None
            if sub.status != "subscribe":
                why = "UNSUBSCRIBED"
            else:
                _allowed, refused = gate(s, s.get(Request, sub.request_id), [sub.person_ref], now)
                why = refused.get(sub.person_ref)
            if why:
                n.status, n.last_status = "refused", why[:32]
                ledger.append(s, "dci.notify_refused", {"subscription_code": sub.code, "platform": sub.platform,
                                                        "household_ref": sub.household_ref, "version": note.version,
                                                        "why": why})
                out["refused"] += 1
                continue
            n.next_attempt_at = now + dt.timedelta(seconds=LEASE_S)
            message = notify_message(sub, note, n.id, lambda ref, p=sub.platform: keys.scoped(ref, f"platform:{p}"),
                                     now)
            sends.append((n.id, sub.code, sub.platform, sub.household_ref, note.version, message))
    for n_id, code, platform, household, version, message in sends:
        header = env.callback_header("notify", status="succ", sender_id=config.platform_id(), receiver_id=platform,
                                     total_count=1)
        outcome, http = _send(config.peer(platform), header, message, path="/registry/notify")
        with session() as s:
            n = s.get(DciNotification, n_id)
            outcome = _settle(n, outcome, http, now)
            if outcome != "retry":
                n.status = outcome
            if outcome == "delivered":
                n.delivered_at = now
            ledger.append(s, "dci.notified", {"subscription_code": code, "platform": platform,
                                              "household_ref": household, "version": version, "delivery": outcome,
                                              "attempts": n.attempts, "http": http})
        out["pending" if outcome == "retry" else outcome] += 1
    return out


def run_pending(*, now: dt.datetime | None = None) -> dict:
    """Everything due: answers to deliver again, notifications to fan out and send (`hub dci deliver`, the DAG)."""
    return {"answers": deliver_due(now=now), "notifications": notify_due(now=now)}
