"""Change notifications to departments: subscriptions, fan-out of the outbox, and delivery to webhooks.

- A department subscribes a webhook (``POST /v1/subscriptions``) and gets a signing secret once; the hub keeps it
  encrypted.
- Fan-out: each ``record.changed`` notification in the outbox (written with the record version it announces) becomes
  one delivery per active subscription of every department that has a request for that household; each
  notification is fanned out once. A ``review.flagged`` one (hub.stages.review: the household entered the missed or
  over list) goes to the departments it names, among those; ``changed`` names the list and programme
  (``review.over.dibao``), never a value, and the body names the review run. A ``consent.withdrawn`` one (a
  resident withdrew on /m/, hub.services.residents) goes to the department that held the consent, whose case it
  just closed; ``changed`` names the scope (``consent.household``, ``consent.self``, ``consent.source.bank``) and
  the body the request.
- Delivery: an HTTP POST of the notification (ids and the names of what changed, never a value), with
  ``Idempotency-Key`` (the notification's key: a department drops repeats), ``X-Hub-Timestamp`` and
  ``X-Hub-Signature: sha256=HMAC(secret, timestamp + "." + body)``. A 2xx answer ends it; anything else is retried
  with exponential back-off, at least once, until MAX_ATTEMPTS, then the delivery is marked failed for staff.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import urllib.parse
import uuid

import requests
from sqlalchemy import select

from consent import ledger
from core.crypto import keyring
from core.store import Delivery, Notification, Request, Subscription, session, utcnow
from hub.rules.policy import open_request, scope_persons

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
BACKOFF_S = (30, 60, 120, 300, 600, 1800, 3600)  # then every hour


class BadSubscription(ValueError):
    pass


def subscription_aad(subscription_id: str) -> str:
    return f"subscriptions.secret_enc:{subscription_id}"


def subscribe(department: str, client_id: str, url: str) -> tuple[str, str]:
    """(subscription id, signing secret shown once)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        raise BadSubscription("url: an http(s) address without credentials in it")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise BadSubscription("url: https is required outside this machine")
    sub_id, secret = uuid.uuid4().hex, "whsec_" + secrets.token_urlsafe(32)
    with session() as s:
        s.add(Subscription(id=sub_id, department=department, client_id=client_id, url=url,
                           secret_enc=keyring().encrypt(secret, aad=subscription_aad(sub_id))))
        ledger.append(s, "subscription.created", {"subscription_id": sub_id, "department": department,
                                                  "client_id": client_id})
    return sub_id, secret


def fan_out(limit: int = 10_000) -> int:
    """Create the deliveries of every record.changed notification not fanned out yet, to the subscriptions of each
    department with an open request for the household (hub.rules.policy.open_request); return how many.

    The active subscriptions are read once: a department without one is sent nothing and its cases are not looked
    up, and each department's case for a household is looked up once however many notes the household has (a
    re-check of a city leaves a record.changed and often a review.flagged note per household: each of those was
    three statements, 6 s for 4,464 households with no subscription at all)."""
    created = 0
    now = utcnow()
    with session() as s:
        subscriptions: dict[str, list[str]] = {}
        for sub_id, department in s.execute(select(Subscription.id, Subscription.department)
                                            .where(Subscription.active.is_(True)).order_by(Subscription.id)):
            subscriptions.setdefault(department, []).append(sub_id)
        asked_of: dict[str, set[str]] = {}  # household -> the subscribed departments that asked for it
        holds: dict[tuple[str, str], bool] = {}  # (department, household) -> its case holds now

        def case_holds(department: str, household_ref: str) -> bool:
            key = (department, household_ref)
            if key not in holds:
                holds[key] = open_request(s, department, household_ref, now) is not None
            return holds[key]

        notes = s.scalars(select(Notification).where(Notification.fanned_out_at.is_(None))
                          .order_by(Notification.id).limit(limit)).all()
        for note in notes:
            note.fanned_out_at = now
            if note.kind not in ("record.changed", "review.flagged", "consent.withdrawn") or \
                    not note.payload.get("changed"):
                continue
            if note.kind == "consent.withdrawn":  # the department that held the consent: its case just closed
                departments = set(note.payload.get("departments") or [])
                created += _deliveries(s, note, departments, subscriptions, now)
                continue
            # departments whose case for the household holds now: a revoked or expired authorization is told nothing;
            # a review's finding goes to the departments it names (their requests, their grants) among them
            if not subscriptions:
                continue
            if note.household_ref not in asked_of:
                asked_of[note.household_ref] = set(s.scalars(select(Request.department).distinct().where(
                    Request.household_ref == note.household_ref))) & subscriptions.keys()
            asked = asked_of[note.household_ref]
            if note.kind == "review.flagged":
                asked = asked & set(note.payload.get("departments") or [])
            departments = {d for d in asked if case_holds(d, note.household_ref)}
            created += _deliveries(s, note, departments, subscriptions, now)
    log.info("notifications fanned out: %d deliveries", created)
    return created


def _deliveries(s, note: Notification, departments: set[str], subscriptions: dict[str, list[str]],
                now: dt.datetime) -> int:
    """One delivery of ``note`` per active subscription (``subscriptions``: department -> their ids) of
    ``departments``; how many."""
    created = 0
    for department in sorted(departments):
        for sub_id in subscriptions.get(department, ()):
            s.add(Delivery(notification_id=note.id, subscription_id=sub_id, next_attempt_at=now))
            created += 1
    return created


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def deliver_pending(*, now: dt.datetime | None = None, limit: int = 1000, timeout: float = 10.0) -> dict:
    """Attempt every delivery that is due; return counts."""
    now = now or utcnow()
    out = {"delivered": 0, "retry": 0, "failed": 0}
    keys = keyring()
    with session() as s:
        due = s.execute(select(Delivery, Notification, Subscription)
                        .join(Notification, Notification.id == Delivery.notification_id)
                        .join(Subscription, Subscription.id == Delivery.subscription_id)
                        .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
                        .order_by(Delivery.id).limit(limit)).all()
        for delivery, note, sub in due:
            body = json.dumps({"id": note.idempotency_key, "kind": note.kind, "household_id": note.household_ref,
                               "version": note.version, "previous_version": note.payload.get("previous_version"),
                               "changed": scope_persons(note.payload.get("changed", []),
                                                        lambda ref: keys.scoped(ref, f"department:{sub.department}")),
                               "record": f"/v1/households/{note.household_ref}/record",
                               **({"review_run": note.payload.get("run_id")} if note.kind == "review.flagged" else {}),
                               **({"request_id": note.payload.get("request_id")}
                                  if note.kind == "consent.withdrawn" else {})},
                              separators=(",", ":")).encode()
            stamp = str(int(now.timestamp()))
            headers = {"Content-Type": "application/json", "Idempotency-Key": note.idempotency_key,
                       "X-Hub-Timestamp": stamp,
                       "X-Hub-Signature": sign(keys.decrypt(sub.secret_enc, aad=subscription_aad(sub.id)), stamp, body)}
            delivery.attempts += 1
            try:
                resp = requests.post(sub.url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
                status = str(resp.status_code)
                ok = 200 <= resp.status_code < 300
            except requests.RequestException as exc:
                status, ok = exc.__class__.__name__[:32], False
            delivery.last_status = status
            if ok:
                delivery.status, delivery.delivered_at = "delivered", now
                out["delivered"] += 1
            elif delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = "failed"
                out["failed"] += 1
            else:
                wait = BACKOFF_S[min(delivery.attempts - 1, len(BACKOFF_S) - 1)]
                delivery.next_attempt_at = now + dt.timedelta(seconds=wait)
                out["retry"] += 1
    log.info("deliveries: %s", out)
    return out
