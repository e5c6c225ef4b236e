"""Change notifications: a department subscribes, a re-check's material change is fanned out to it, and the
signed delivery is retried until its webhook takes it, with the same idempotency key."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.web.app import create_app
from hub.services.clients import create_client
from hub.stages.intake import create_request
from hub.stages.notify import deliver_pending, fan_out, sign
from hub.stages.pipeline import run_inline
from hub.stages.reverify import recheck_batch
from core.store import Delivery, session, utcnow
from tests.support.households import sample
from tests.support.webhook import serve_webhook


@pytest.fixture
def webhook():
    yield from serve_webhook([500, 200])


def test_a_material_change_reaches_the_subscribed_department_signed_and_retried(agencies, webhook):
    from agencies.server import AgencyServer

    url, received = webhook
    fan_out()  # what earlier tests left in the outbox goes out before anyone subscribes here
    _, token = create_client("caseworker", "department", "MZ-210302")
    _, other = create_client("other department", "department", "YB-210303")
    api = TestClient(create_app())
    sub = api.post("/v1/subscriptions", json={"url": url}, headers={"Authorization": f"Bearer {token}"})
    assert sub.status_code == 201
    secret = sub.json()["secret"]
    assert api.post("/v1/subscriptions", json={"url": url}, headers={"Authorization": f"Bearer {other}"}).status_code == 201
    assert api.post("/v1/subscriptions", json={"url": "http://10.0.0.1/x"},
                    headers={"Authorization": f"Bearer {token}"}).status_code == 422
    doc = sample(43, sources=["household", "bank"], department="MZ-210302")
    app = create_request(doc)
    run_inline(app)
    down = AgencyServer.from_hub_home(households=50, seed=7, faults="down:bank").start()
    import os

    old = os.environ["HUB_AGENCIES_URL"]
    os.environ["HUB_AGENCIES_URL"] = down.url
    try:
        assert recheck_batch([app], run_id="notify-1")["changed"] == 1  # bank now unavailable: a material change
    finally:
        os.environ["HUB_AGENCIES_URL"] = old
        down.stop()
    assert fan_out() == 1  # the other department has no request for this household
    assert deliver_pending() == {"delivered": 0, "retry": 1, "failed": 0}
    assert deliver_pending() == {"delivered": 0, "retry": 0, "failed": 0}  # not due yet
    assert deliver_pending(now=utcnow() + dt.timedelta(seconds=31)) == {"delivered": 1, "retry": 0, "failed": 0}
    assert len(received) == 2
    (h1, b1), (h2, b2) = received
    assert h1["Idempotency-Key"] == h2["Idempotency-Key"] and b1 == b2  # the same notification, twice: at least once
    assert h2["X-Hub-Signature"] == sign(secret, h2["X-Hub-Timestamp"], b2)
    note = json.loads(b2)
    assert note["kind"] == "record.changed" and "sources.bank" in note["changed"]
    assert all(m["name"] not in b2.decode() and m["id_number"] not in b2.decode() for m in doc["members"])
    with session() as s:
        d = s.scalars(select(Delivery).order_by(Delivery.id.desc())).first()
        assert (d.status, d.attempts, d.last_status) == ("delivered", 2, "200")


def test_a_department_whose_authorization_was_revoked_is_told_nothing_more(agencies, webhook):
    """Two departments verified the same household; one's authorization is revoked. A later change of the household
    (found by the other's re-check) is delivered to the other only."""
    from agencies.server import AgencyServer
    from consent.authorizations import revoke
    from core.store import Authorization

    url, received = webhook
    fan_out()
    api = TestClient(create_app())
    subs = {}
    for code in ("MZ-210303", "MZ-210304"):
        _, token = create_client(f"caseworker {code}", "department", code)
        made = api.post("/v1/subscriptions", json={"url": url}, headers={"Authorization": f"Bearer {token}"})
        subs[code] = made.json()["id"]
    apps = {code: create_request(sample(44, sources=["household", "bank"], department=code), department=code)
            for code in subs}
    for app in apps.values():
        run_inline(app)
    with session() as s:
        revoke(s, s.scalars(select(Authorization.id).where(Authorization.request_id == apps["MZ-210303"])).one())
    down = AgencyServer.from_hub_home(households=50, seed=7, faults="down:bank").start()
    import os

    old = os.environ["HUB_AGENCIES_URL"]
    os.environ["HUB_AGENCIES_URL"] = down.url
    try:
        assert recheck_batch([apps["MZ-210304"]], run_id="notify-revoked")["changed"] == 1
    finally:
        os.environ["HUB_AGENCIES_URL"] = old
        down.stop()
    assert fan_out() == 1
    with session() as s:
        assert [d.subscription_id for d in s.scalars(select(Delivery).order_by(Delivery.id.desc()).limit(1))] == \
            [subs["MZ-210304"]]


def test_fan_out_asks_once_a_household_which_subscribed_departments_asked_for_it(agencies):
    """A city's re-check leaves a record.changed and often a review.flagged note per household: the departments that
    asked for a household are read once for all its notes, not once a note."""
    import uuid

    from sqlalchemy import event

    from core.store import Notification, engine

    fan_out()  # what earlier tests left goes out first
    _, token = create_client("fan-out department", "department", "MZ-210302")
    assert TestClient(create_app()).post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"},
                                         headers={"Authorization": f"Bearer {token}"}).status_code == 201
    tag = uuid.uuid4().hex[:8]
    households = [f"hh_fan_{tag}_{k}" for k in range(5)]  # no department ever asked for these
    with session() as s:
        for ref in households:
            for kind in ("record.changed", "review.flagged"):
                s.add(Notification(household_ref=ref, version=1, kind=kind, idempotency_key=f"{ref}:{kind}",
                                   payload={"household_ref": ref, "changed": ["sources.bank"],
                                            "departments": ["MZ-210302"]}))
    reads: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "FROM requests" in " ".join(statement.split()):
            reads.append(statement)

    event.listen(engine(), "before_cursor_execute", seen)
    try:
        assert fan_out() == 0  # nobody asked for them: no delivery
    finally:
        event.remove(engine(), "before_cursor_execute", seen)
    assert len(reads) == len(households)  # once a household (it was once a note: twice as many)
    with session() as s:
        assert all(n.fanned_out_at is not None for n in s.scalars(
            select(Notification).where(Notification.household_ref.in_(households))))
