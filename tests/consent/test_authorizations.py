"""Stored authorizations: receipts follow the documented schema, revocation and expiry are logged, the CLI works."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import select

from consent.authorizations import log_expirations, revoke, views
from consent.gate import Reason, check
from hub.cli import main
from hub.stages.intake import create_request
from core.store import Authorization, LedgerEvent, session, utcnow
from tests.support.households import sample

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "consent" / "receipt.schema.json").read_text())


def _auth(request_id):
    with session() as s:
        return s.scalars(select(Authorization).where(Authorization.request_id == request_id)).one()


def _events(kind, **match):
    with session() as s:
        return [e.payload for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == kind))
                if all(e.payload.get(k) == v for k, v in match.items())]


def test_receipts_follow_the_documented_schema_and_hold_no_personal_data():
    doc = sample(40, sources=("household", "tax", "bank"))
    doc["sources"] = ["household"]
    auth = _auth(create_request(doc))
    jsonschema.validate(auth.receipt, SCHEMA)
    text = json.dumps(auth.receipt, ensure_ascii=False)
    for m in doc["members"]:
        assert m["id_number"] not in text and m["name"] not in text
    assert all(p["sensitive"]["categories"] == ["bank"] for p in auth.receipt["principals"])
    assert _events("authorization.granted", authorization_id=auth.id)[0]["receipt_sha256"] == auth.receipt_sha256


def test_partial_and_full_revocation_take_effect_and_are_logged():
    doc = sample(41, sources=("household", "tax"))
    doc["sources"] = ["household"]
    request_id = create_request(doc)
    auth = _auth(request_id)
    first = auth.receipt["principals"][0]["person_ref"]
    now = utcnow()
    with session() as s:
        revoke(s, auth.id, person_ref=first, source="tax", at=now)
        view = views(s, request_id)[0]
    assert check(view, first, "tax", "dibao", doc["department"], now) is Reason.REVOKED
    assert check(view, first, "household", "dibao", doc["department"], now) is Reason.ALLOWED
    with session() as s:
        revoke(s, auth.id, at=now)
        view = views(s, request_id)[0]
    assert check(view, first, "household", "dibao", doc["department"], now) is Reason.REVOKED
    scopes = [e["scope"] for e in _events("authorization.revoked", authorization_id=auth.id)]
    assert scopes == ["source", "full"]
    with pytest.raises(ValueError):
        with session() as s:
            revoke(s, auth.id, source="tax")


def test_expiry_is_logged_once():
    request_id = create_request(sample(42))
    auth = _auth(request_id)
    with session() as s:
        log_expirations(s, auth.valid_until - dt.timedelta(seconds=1))
    assert _events("authorization.expired", authorization_id=auth.id) == []
    with session() as s:
        assert log_expirations(s, auth.valid_until + dt.timedelta(days=1)) >= 1
        log_expirations(s, auth.valid_until + dt.timedelta(days=2))
    assert len(_events("authorization.expired", authorization_id=auth.id)) == 1


def test_consent_cli_grant_show_revoke(tmp_path, capsys):
    doc = sample(43)
    authorization = doc.pop("authorization")
    request_id = create_request(doc)
    path = tmp_path / "auth.json"
    path.write_text(json.dumps(authorization))
    assert main(["consent", "grant", request_id, str(path)]) == 0
    auth_id = capsys.readouterr().out.strip()
    assert main(["consent", "show", request_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    status = shown["authorizations"][0]["status_now"]
    assert {v["household"] for v in status.values()} == {"ALLOWED"}
    member = doc["members"][0]["id_number"]
    assert main(["consent", "revoke", auth_id, "--member", member, "--source", "household"]) == 0
    capsys.readouterr()
    assert main(["consent", "show", request_id]) == 0
    status = json.loads(capsys.readouterr().out)["authorizations"][0]["status_now"]
    assert sorted(v["household"] for v in status.values()).count("REVOKED") == 1
    assert member not in json.dumps(status)
    bad = dict(authorization, consents=[])
    path.write_text(json.dumps(bad))
    assert main(["consent", "grant", request_id, str(path)]) == 2
    assert "authorization.consents" in capsys.readouterr().err
    assert main(["consent", "revoke", "0" * 32]) == 2


def test_views_of_many_requests_are_each_ones_views_read_in_a_few_statements():
    from sqlalchemy import event

    from consent.authorizations import views_many
    from core.store import Request, engine

    ids = [create_request(sample(43 + k, sources=("household", "tax"))) for k in range(4)]
    first = _auth(ids[0])
    now = utcnow()
    with session() as s:  # a revocation of each kind, and a re-check running under its application's consent
        revoke(s, first.id, person_ref=first.receipt["principals"][0]["person_ref"], source="tax", at=now)
        revoke(s, _auth(ids[1]).id, at=now)
        app = s.get(Request, ids[2])
        s.add(Request(id="recheck-of-2", department=app.department, purpose=app.purpose, case_ref=app.case_ref,
                      sources=list(app.sources), status="received", kind="recheck", parent_id=app.id))
    wanted = [*ids, "recheck-of-2", "no-such-request"]
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine(), "before_cursor_execute", listener)
    try:
        with session() as s:
            many = views_many(s, wanted + ids[:1])  # a request named twice is read once
    finally:
        event.remove(engine(), "before_cursor_execute", listener)
    assert len([q for q in statements if q.lstrip().upper().startswith("SELECT")]) <= 4
    with session() as s:
        for request_id in wanted:
            assert many[request_id] == views(s, request_id), request_id
    for request_id in ids:  # each its own authorization and members, none of another request's
        auth = _auth(request_id)
        (view,) = many[request_id]
        assert (view.id, view.department, view.valid_until) == (auth.id, auth.department, auth.valid_until)
        assert set(view.members) == {p["person_ref"] for p in auth.receipt["principals"]}
    assert many["recheck-of-2"] == many[ids[2]] and many["recheck-of-2"]
    assert many["no-such-request"] == []
    assert many[ids[1]][0].revoked_at is not None and many[ids[0]][0].revoked_at is None
    assert any(m.revoked_sources for m in many[ids[0]][0].members.values())
