"""The department API over HTTP (FastAPI's test client), with real tokens and the real store."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.api import create_app
from hub.clients import create_client
from hub.crypto import keyring
from hub.pipeline import run_inline
from hub.records import verify_record
from hub.store import LedgerEvent, session
from tests.conftest import sample


@pytest.fixture(scope="module")
def api():
    return TestClient(create_app())


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def tokens():
    _, a = create_client("caseworker A", "department", "MZ-210302")
    _, b = create_client("caseworker B", "department", "YB-210303")
    _, audit = create_client("auditor", "auditor")
    return {"a": a, "b": b, "auditor": audit}


def test_health_is_open_and_everything_else_needs_a_token(api):
    assert api.get("/health").json() == {"status": "ok"}
    assert api.get("/v1/requests/x").status_code == 401
    assert api.get("/v1/households/x/record?purpose=dibao").status_code == 401
    assert api.post("/v1/requests", json={}).status_code == 401
    forged = api.get("/v1/requests/x", headers=_auth("hub_forged-token"))
    assert forged.status_code == 401 and forged.headers["www-authenticate"] == "Bearer"
    assert "/v1/households/{household_id}/record" in api.get("/openapi.json").json()["paths"]


def test_a_department_submits_a_request_and_reads_the_published_record(api, tokens, agencies):
    doc = sample(16)
    created = api.post("/v1/requests", json=doc, headers=_auth(tokens["a"]))
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    assert created.json()["status"] == "received"
    run_inline(request_id)
    req = api.get(f"/v1/requests/{request_id}", headers=_auth(tokens["a"])).json()
    assert req["status"] == "published" and req["source_status"] == [
        {"source": "household", "status": "complete", "reason": None}]
    hh = req["household_id"]
    resp = api.get(f"/v1/households/{hh}/record", params={"purpose": "dibao"}, headers=_auth(tokens["a"]))
    assert resp.status_code == 200
    body = resp.json()
    assert body["version"] >= 1 and verify_record(body["content"], body["signature"])
    assert {m["name"] for m in body["content"]["members"]} == {m["name"] for m in doc["members"]}
    assert all(m["id_number"] not in resp.text for m in doc["members"])  # only masked ID numbers
    with session() as s:
        reads = [e.payload for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "record.read"))]
    assert any(r["household_ref"] == hh and r["purpose"] == "dibao" for r in reads)

    # another department, another purpose, an auditor: no record
    assert api.get(f"/v1/households/{hh}/record", params={"purpose": "dibao"}, headers=_auth(tokens["b"])).status_code == 404
    assert api.get(f"/v1/households/{hh}/record", params={"purpose": "medical"}, headers=_auth(tokens["a"])).status_code == 404
    assert api.get(f"/v1/households/{hh}/record", params={"purpose": "dibao"}, headers=_auth(tokens["auditor"])).status_code == 403
    assert api.get(f"/v1/requests/{request_id}", headers=_auth(tokens["b"])).status_code == 404


def test_a_bad_request_body_is_refused_without_echoing_personal_data(api, tokens):
    doc = sample(17)
    idn = doc["members"][0]["id_number"]
    doc["members"][0]["id_number"] = idn[:17] + ("0" if idn[17] != "0" else "1")
    resp = api.post("/v1/requests", json=doc, headers=_auth(tokens["a"]))
    assert resp.status_code == 422 and "members[1].id_number" in resp.text
    doc["members"][0]["relation"] = 12345  # a type error FastAPI itself catches
    doc["purpose"] = "lottery"
    resp = api.post("/v1/requests", json=doc, headers=_auth(tokens["a"]))
    assert resp.status_code == 422
    assert doc["members"][0]["id_number"] not in resp.text and doc["members"][0]["name"] not in resp.text


def test_tokens_are_stored_hashed():
    _, token = create_client("x", "staff")
    from sqlalchemy import text

    from hub.store import engine

    with engine().connect() as c:
        stored = " ".join(str(v) for row in c.execute(text("SELECT * FROM api_clients")) for v in row)
    assert token not in stored
    assert keyring()  # keys exist for the session


def test_without_airflow_configured_a_request_is_received_and_not_started(api, tokens, monkeypatch):
    monkeypatch.delenv("HUB_AIRFLOW_URL", raising=False)
    created = api.post("/v1/requests", json=sample(26), headers=_auth(tokens["a"]))
    assert created.status_code == 201 and created.json()["dag_run_id"] is None


def test_an_unreachable_airflow_leaves_the_request_received_and_says_nothing_personal(api, tokens, monkeypatch, caplog):
    monkeypatch.setenv("HUB_AIRFLOW_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("HUB_AIRFLOW_USER", "admin")
    monkeypatch.setenv("HUB_AIRFLOW_PASSWORD", "x")
    doc = sample(26)
    created = api.post("/v1/requests", json=doc, headers=_auth(tokens["a"]))
    assert created.status_code == 201 and created.json()["dag_run_id"] is None
    assert created.json()["status"] == "received"
    assert "could not start verify_household" in caplog.text
    assert all(m["id_number"] not in caplog.text and m["name"] not in caplog.text for m in doc["members"])


def test_assistance_is_reported_by_a_department_with_a_case_and_listed_across_departments(api, tokens, agencies):
    doc = sample(19)
    created = api.post("/v1/requests", json=doc, headers=_auth(tokens["a"])).json()
    hh = run_inline(created["id"]).household_ref
    grant = {"household_id": hh, "programme": "dibao", "granted_from": "2026-12-01", "request_id": created["id"]}
    # department B has no case for this household: the same 404 as for a household that does not exist
    assert api.post("/v1/assistance", json=grant, headers=_auth(tokens["b"])).status_code == 404
    assert api.post("/v1/assistance", json={**grant, "household_id": "hh_none"},
                    headers=_auth(tokens["b"])).status_code == 404
    assert api.post("/v1/assistance", json=grant).status_code == 401
    made = api.post("/v1/assistance", json=grant, headers=_auth(tokens["a"]))
    assert made.status_code == 201 and made.json()["department"] == "MZ-210302"
    bad = api.post("/v1/assistance", json={**grant, "granted_until": "2026-01-01"}, headers=_auth(tokens["a"]))
    assert bad.status_code == 422
    listed = api.get(f"/v1/households/{hh}/assistance", params={"purpose": "dibao"}, headers=_auth(tokens["a"]))
    assert listed.status_code == 200 and [g["programme"] for g in listed.json()["grants"]] == ["dibao"]
    assert api.get(f"/v1/households/{hh}/assistance", params={"purpose": "dibao"},
                   headers=_auth(tokens["b"])).status_code == 404
    with session() as s:
        reads = [e for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "assistance.read"))
                 if e.payload["household_ref"] == hh]
    assert len(reads) == 1
    assert set(reads[0].payload["fields"]) == set(listed.json()["grants"][0])  # the ledger names what was returned
