"""The department API over HTTP (FastAPI's test client), with real tokens and the real store."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.web.app import create_app
from hub.web.models import ErrorOut
from hub.services.clients import create_client
from core.crypto import keyring
from hub.stages.pipeline import run_inline
from hub.stages.records import verify_record
from core.store import LedgerEvent, session
from tests.support.households import sample


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


def _error(resp, status_code: int) -> dict:
    """The API's one error body (ErrorOut in the OpenAPI), with the status expected: its ``error``."""
    assert resp.status_code == status_code, resp.text
    ErrorOut.model_validate(resp.json())
    assert set(resp.json()) == {"error"}, resp.text
    return resp.json()["error"]


# README, "API": the description holds no data, token or key (nor do the files of its pages, hub.web.docs)
PUBLIC = {"/health", "/openapi.json", "/docs", "/redoc", "/docs-static/redoc.standalone.js"}
PATH_VALUES = {"request_id": "0" * 32, "application_id": "0" * 32, "household_id": "hh_" + "0" * 32, "seq": "1", "person_ref": "p_" + "0" * 32,
               "client_id": "0" * 32}


def test_health_is_open_and_everything_else_needs_a_token(api):
    assert api.get("/health").json() == {"status": "ok"}
    assert api.get("/v1/requests/x").status_code == 401
    assert api.get("/v1/households/x/record?purpose=dibao").status_code == 401
    assert api.post("/v1/requests", json={}).status_code == 401
    forged = api.get("/v1/requests/x", headers=_auth("hub_forged-token"))
    assert forged.status_code == 401 and forged.headers["www-authenticate"] == "Bearer"
    assert "/v1/households/{household_id}/record" in api.get("/openapi.json").json()["paths"]


def test_only_health_and_the_api_description_answer_without_a_token(api):
    spec = api.get("/openapi.json")
    assert spec.status_code == 200 and "/v1/households/{household_id}/record" in spec.json()["paths"]
    docs = api.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower() and "/openapi.json" in docs.text
    assert api.get("/redoc").status_code == 200 and "/openapi.json" in api.get("/redoc").text  # hub.web.docs
    assert api.get("/docs/oauth2-redirect").status_code == 404  # not served
    # a route kept out of the OpenAPI (where the loop below finds the others) is one of the two, the console's, or
    # the residents' pages (their sign-in: tests/hub/web/residents/test_pages.py)
    hidden = {r.path for r in api.app.routes if not getattr(r, "include_in_schema", True)}
    assert {p for p in hidden if not p.startswith(("/console", "/m/"))} == PUBLIC - {"/health"}
    refused = 0
    for path, operations in spec.json()["paths"].items():
        url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
        for method in operations:
            resp = api.request(method.upper(), url, json={} if method != "get" else None)
            if path in PUBLIC:
                assert resp.status_code == 200, path
            elif path.startswith("/dci/"):  # DCI's own refusal (HttpErrorResponse), README "Federation"
                assert resp.status_code == 401 and resp.json()["errors"], path
                refused += 1
            else:
                assert _error(resp, 401) == {"code": "unauthenticated", "message": "missing or invalid bearer token",
                                             "field": None}, path
                assert resp.headers["www-authenticate"] == "Bearer"
                refused += 1
    assert refused >= 30


BIG = 10 * 1024 * 1024


def _json_headers(token: str | None = None) -> dict:
    return {"Content-Type": "application/json", **(_auth(token) if token else {})}


def test_a_body_over_the_limit_is_refused_with_413_with_or_without_a_content_length(api, tokens):
    big = b'{"case_ref": "' + b"x" * BIG + b'"}'
    declared = api.post("/v1/requests", content=big, headers=_json_headers(tokens["a"]))
    assert _error(declared, 413) == {"code": "body_too_large", "message": "body: larger than 1048576 bytes",
                                     "field": None}
    assert declared.headers["connection"] == "close"  # what was not read is not waited for

    def chunks():
        for _ in range(BIG // 65536):
            yield b" " * 65536

    chunked = api.post("/v1/requests", content=chunks(), headers=_json_headers(tokens["a"]))
    assert "content-length" not in chunked.request.headers and chunked.request.headers["transfer-encoding"] == "chunked"
    assert _error(chunked, 413)["message"] == "body: larger than 1048576 bytes"
    # every route that takes a body says so in the OpenAPI, and refuses one too large, before asking for a token
    takes_a_body = [path for path, ops in api.get("/openapi.json").json()["paths"].items()
                    if "requestBody" in ops.get("post", {}) and not path.startswith("/dci/")]
    assert "/v1/requests" in takes_a_body and len(takes_a_body) >= 6
    for path in takes_a_body:
        assert "413" in api.get("/openapi.json").json()["paths"][path]["post"]["responses"], path
        _error(api.post(path, content=big, headers=_json_headers()), 413)


def test_a_chunked_body_is_counted_as_it_arrives_and_never_read_past_the_limit(monkeypatch):
    """An endless body: the refusal comes after the limit and one chunk, not after the end (there is none)."""
    monkeypatch.setenv("HUB_API_MAX_BODY_BYTES", "65536")
    app = create_app()
    read, sent = 0, []

    async def endless():
        nonlocal read
        read += 4096
        return {"type": "http.request", "body": b" " * 4096, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/requests", "raw_path": b"/v1/requests", "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    asyncio.run(asyncio.wait_for(app(scope, endless, send), timeout=30))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert 65536 < read <= 65536 + 4096


def test_the_limit_is_hub_api_max_body_bytes(monkeypatch, tokens):
    body = json.dumps(sample(27), ensure_ascii=False).encode()
    monkeypatch.setenv("HUB_API_MAX_BODY_BYTES", str(len(body) - 1))
    _error(TestClient(create_app()).post("/v1/requests", content=body, headers=_json_headers(tokens["a"])), 413)
    monkeypatch.setenv("HUB_API_MAX_BODY_BYTES", str(len(body)))
    created = TestClient(create_app()).post("/v1/requests", content=body, headers=_json_headers(tokens["a"]))
    assert created.status_code == 201, created.text
    for bad in ("0", "1023", "1mb", "-2048", "１０２４", "1e6", str(2**40)):
        monkeypatch.setenv("HUB_API_MAX_BODY_BYTES", bad)
        with pytest.raises(ValueError, match="^HUB_API_MAX_BODY_BYTES: "):
            create_app()  # the start stops, not every request


def test_the_dci_routes_keep_their_own_reader_and_refusal(api):
    """They read at most 1 MiB themselves and answer in DCI's form (README, "Federation": err.request.bad)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from connectors.envelope import public_key_b64

    _, platform = create_client("a platform", "federation", "HUB-BODY-TEST",
                                public_key=public_key_b64(Ed25519PrivateKey.generate().public_key()))
    resp = api.post("/dci/registry/sync/search", content=b" " * (2 << 20), headers=_json_headers(platform))
    assert resp.status_code == 400 and "err.request.bad" in resp.text


@pytest.mark.parametrize("key, value", [
    ("valid_from", 1764547200), ("valid_until", 1764547200.5), ("valid_from", True), ("valid_from", "1764547200"),
    ("recheck_interval_days", "90"), ("data_life_days", True), ("data_life_days", 30.0)])
def test_moments_and_day_counts_of_another_json_type_are_refused_naming_the_field(api, tokens, key, value):
    """Pydantic would read a number (or digits) as seconds since 1970, "90" and true as whole numbers."""
    doc = sample(28)
    doc["authorization"][key] = value
    error = _error(api.post("/v1/requests", json=doc, headers=_auth(tokens["a"])), 422)
    assert f"authorization.{key}" in [p["field"] for p in error["details"]], error
    assert error["code"] == "invalid_field" and error["field"] == error["details"][0]["field"]


def test_a_member_born_in_the_future_is_refused_naming_the_member(api, tokens):
    from schemas.codes import id_check_char

    doc = sample(28)
    old = doc["members"][1]["id_number"]
    first17 = old[:6] + "20990101" + old[14:17]
    doc = json.loads(json.dumps(doc).replace(old, first17 + id_check_char(first17)))
    resp = api.post("/v1/requests", json=doc, headers=_auth(tokens["a"]))
    error = _error(resp, 422)
    assert {"code": "invalid_field", "field": "members[1].id_number",  # counting from 0, as the JSON does
            "message": "members[1].id_number: its birth date is in the future"} in error["details"], error
    assert first17 not in resp.text


@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
def test_a_body_nested_too_deep_is_refused_with_400_saying_so(api, tokens, depth):
    """Once a 422 (33 deep) or FastAPI's 400 "There was an error parsing the body" (a RecursionError inside)."""
    body = '{"purpose": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    resp = api.post("/v1/requests", content=body, headers=_json_headers(tokens["a"]))
    assert _error(resp, 400) == {"code": "invalid_body", "field": None,
                                 "message": "body: nested deeper than 32 levels of arrays and objects"}


def test_a_body_nested_32_deep_is_read(api, tokens):
    body = '{"purpose": ' + "[" * 31 + "]" * 31 + "}"
    resp = api.post("/v1/requests", content=body, headers=_json_headers(tokens["a"]))
    assert any(p["field"] == "purpose" for p in _error(resp, 422)["details"]), resp.text


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
    assert resp.status_code == 422 and _error(resp, 422)["field"] == "members[0].id_number"
    doc["members"][0]["relation"] = 12345  # a type error FastAPI itself catches
    doc["purpose"] = "lottery"
    resp = api.post("/v1/requests", json=doc, headers=_auth(tokens["a"]))
    assert resp.status_code == 422
    assert doc["members"][0]["id_number"] not in resp.text and doc["members"][0]["name"] not in resp.text


def test_tokens_are_stored_hashed():
    _, token = create_client("x", "staff")
    from sqlalchemy import text

    from core.store import engine

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
    for field, value in (("granted_from", 1764547200), ("granted_from", True), ("granted_until", 1764547200),
                         ("granted_from", "1764547200"), ("granted_from", "2026-12-01T00:00:00+08:00")):
        typed = api.post("/v1/assistance", json={**grant, field: value}, headers=_auth(tokens["a"]))
        assert typed.status_code == 422 and field in typed.text, (field, value)  # days as ISO text only
    listed = api.get(f"/v1/households/{hh}/assistance", params={"purpose": "dibao"}, headers=_auth(tokens["a"]))
    assert listed.status_code == 200 and [g["programme"] for g in listed.json()["grants"]] == ["dibao"]
    assert api.get(f"/v1/households/{hh}/assistance", params={"purpose": "dibao"},
                   headers=_auth(tokens["b"])).status_code == 404
    with session() as s:
        reads = [e for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "assistance.read"))
                 if e.payload["household_ref"] == hh]
    assert len(reads) == 1
    assert set(reads[0].payload["fields"]) == set(listed.json()["grants"][0])  # the ledger names what was returned
