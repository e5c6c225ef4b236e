"""The JSON API's one error body and the console's one error page.

Every JSON route (all but /dci/ and /console/) refuses with ``{"error": {"code", "message", "field"}}`` (and on 422
``details``), its code one of hub.web.models.ERROR_CODES, which README ("Errors") and the OpenAPI (ErrorCode) list;
each code below comes from a real request. The console answers the same refusals with a page in the user's language
with ways back, never JSON or a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from hub.services.clients import create_client
from hub.web.app import create_app
from hub.web.models import ERROR_CODES, ErrorOut
from hub.web.ratelimit import Limit, Limiter
from tests.support.households import sample

README = Path(__file__).resolve().parents[3] / "README.md"
ZERO = "0" * 32


@pytest.fixture(scope="module")
def api():
    return TestClient(create_app(limiter=Limiter(Limit.parse("0"))), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def tokens():
    made = {role: create_client(f"errors {role}", role, "MZ-210302" if role == "department" else None)
            for role in ("department", "auditor", "admin", "staff")}
    return {role: token for role, (_, token) in made.items()} | {"admin_id": made["admin"][0].id}


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _error(resp, status_code: int, code: str) -> dict:
    """The one error body, with the status and code expected: its ``error``."""
    assert resp.status_code == status_code, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    ErrorOut.model_validate(resp.json())
    assert set(resp.json()) == {"error"}, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and ERROR_CODES[code][0] == status_code, error
    return error


def test_a_body_that_is_not_json_is_invalid_body(api, tokens):
    resp = api.post("/v1/requests", content=b"{not json", headers={**_auth(tokens["department"]),
                                                                   "Content-Type": "application/json"})
    assert _error(resp, 400, "invalid_body")["field"] is None


def test_fields_at_fault_are_invalid_field_with_every_problem_in_details_counting_members_from_0(api, tokens):
    doc = sample(5)
    first, second = doc["members"][0]["id_number"], doc["members"][1]["id_number"]
    doc["members"][1]["id_number"] = second[:17] + ("0" if second[17] != "0" else "1")
    doc["members"][1]["relation"] = "neighbour"
    resp = api.post("/v1/requests", json=doc, headers=_auth(tokens["department"]))
    error = _error(resp, 422, "invalid_field")
    fields = [d["field"] for d in error["details"]]
    assert fields[:2] == ["members[1].id_number", "members[1].relation"], error  # the second member: index 1
    assert (error["field"], error["message"]) == (error["details"][0]["field"], error["details"][0]["message"])
    assert all(d["code"] == "invalid_field" for d in error["details"])
    assert second[:17] not in resp.text and first not in resp.text and doc["members"][1]["name"] not in resp.text


def test_a_type_error_pydantic_finds_names_the_json_path(api, tokens):
    doc = sample(5)
    doc["members"][1]["relation"] = 12345
    error = _error(api.post("/v1/requests", json=doc, headers=_auth(tokens["department"])), 422, "invalid_field")
    assert error["field"] == "members[1].relation" and error["message"].startswith("members[1].relation: "), error


def test_a_query_parameter_at_fault_is_named_by_its_name(api, tokens):
    error = _error(api.get("/v1/requests?limit=0", headers=_auth(tokens["department"])), 422, "invalid_field")
    assert error["field"] == "limit", error
    naive = api.get("/v1/audit/events?since=2026-01-01T00:00:00", headers=_auth(tokens["auditor"]))
    assert _error(naive, 422, "invalid_field") == {"code": "invalid_field", "field": "since", "details": [
        {"code": "invalid_field", "field": "since", "message": "since: needs a time zone offset"}],
        "message": "since: needs a time zone offset"}


def test_input_wrong_as_a_whole_is_invalid_request(api, tokens):
    resp = api.post(f"/v1/clients/{tokens['admin_id']}/deactivate", headers=_auth(tokens["admin"]))
    error = _error(resp, 422, "invalid_request")
    assert error["field"] is None and error["message"] == "an admin cannot deactivate itself"


def test_an_unknown_object_an_unknown_route_and_a_refused_read_are_not_found(api, tokens):
    assert _error(api.get(f"/v1/requests/{ZERO}", headers=_auth(tokens["department"])), 404, "not_found") == {
        "code": "not_found", "message": "no such request", "field": None}
    _error(api.get("/v1/nowhere", headers=_auth(tokens["department"])), 404, "not_found")
    # a record the department may not read looks like one that does not exist (NotEntitled is no code of its own)
    refused = api.get(f"/v1/households/hh_{ZERO}/record?purpose=dibao", headers=_auth(tokens["department"]))
    _error(refused, 404, "not_found")
    assert "not_entitled" not in ERROR_CODES


def test_a_method_the_path_does_not_take_is_method_not_allowed_naming_those_it_does(api, tokens):
    resp = api.delete("/v1/requests", headers=_auth(tokens["department"]))
    _error(resp, 405, "method_not_allowed")
    assert resp.headers["allow"] == "GET, POST"


def test_no_token_and_a_forged_one_are_unauthenticated(api):
    for headers in ({}, _auth("hub_forged-token")):
        resp = api.get("/v1/requests", headers=headers)
        assert _error(resp, 401, "unauthenticated")["message"] == "missing or invalid bearer token"
        assert resp.headers["www-authenticate"] == "Bearer"


def test_another_roles_route_is_forbidden(api, tokens):
    _error(api.get("/v1/requests", headers=_auth(tokens["auditor"])), 403, "forbidden")


def test_over_the_rate_is_rate_limited_with_retry_after(tokens):
    api = TestClient(create_app(limiter=Limiter(Limit.parse("0.01/1"))))
    assert api.get("/v1/policy", headers=_auth(tokens["auditor"])).status_code == 200
    resp = api.get("/v1/policy", headers=_auth(tokens["auditor"]))
    _error(resp, 429, "rate_limited")
    assert int(resp.headers["retry-after"]) >= 1


def test_a_body_over_the_limit_is_body_too_large(api, tokens):
    resp = api.post("/v1/requests", content=b" " * (2 << 20), headers={"Content-Type": "application/json"})
    assert _error(resp, 413, "body_too_large")["message"] == "body: larger than 1048576 bytes"


def test_a_proof_before_its_checkpoint_is_conflict(api, tokens):
    from sqlalchemy import func, select

    from core.store import LedgerEvent, session

    api.get("/v1/audit/events?limit=1", headers=_auth(tokens["auditor"]))  # an entry newer than any checkpoint
    with session() as s:
        seq = s.scalar(select(func.max(LedgerEvent.seq)))
    _error(api.get(f"/v1/audit/proof/{seq}", headers=_auth(tokens["auditor"])), 409, "conflict")


def test_a_full_disk_is_store_unavailable_with_retry_after(own_store):
    from sqlalchemy import text

    from core.store import session
    from tests.consent.test_ledger_group import _full_disk

    _, token = create_client("errors full disk", "department", "MZ-210302")
    with session() as s:  # fill the free pages, so the next writes need the file to grow
        s.execute(text("CREATE TABLE filler (x BLOB)"))
        s.execute(text("INSERT INTO filler VALUES (zeroblob(200000))"))
        s.execute(text("DROP TABLE filler"))
    api = TestClient(create_app(limiter=Limiter(Limit.parse("0"))))
    undo = _full_disk(own_store)
    try:
        for k in range(200):  # the free pages left in the file take a few requests first
            resp = api.post("/v1/requests", json=sample(k % 20 + 1), headers=_auth(token))
            if resp.status_code != 201:
                break
        assert _error(resp, 503, "store_unavailable")["message"] == ("the hub's store is not available now; try "
                                                                    "again shortly")
        assert resp.headers["retry-after"] == "2"
    finally:
        undo()


def test_an_unexpected_error_is_internal_error_with_a_reference_and_nothing_of_the_exception(api, tokens,
                                                                                          monkeypatch):
    from hub.web.routers import staff

    def broken(*_a, **_k):
        raise RuntimeError("secret internals 110105194912310029")

    monkeypatch.setattr(staff, "overview", broken)
    resp = api.get("/v1/sources", headers=_auth(tokens["staff"]))
    error = _error(resp, 500, "internal_error")
    assert re.fullmatch(r"an unexpected error; reference [0-9A-F]{8}", error["message"])
    assert "secret" not in resp.text and "110105" not in resp.text and "Traceback" not in resp.text


def test_the_openapi_lists_the_codes_and_every_json_route_its_errors(api):
    spec = api.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorCode"]["enum"] == list(ERROR_CODES)
    assert set(schemas["ErrorOut"]["required"]) == {"error"}
    routes = 0
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for op in operations.values():
            for status in ("401", "403", "422", "429", "503"):
                assert op["responses"][status]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"}, (path, status)
            routes += 1
    assert routes >= 20


def test_the_readme_lists_every_code_in_its_errors_section():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Errors"):]
    section = section[:section.index("\n## ")]
    listed = re.findall(r"^\| (\d{3}) \| `(\w+)` \|", section, flags=re.M)
    assert [(int(s), c) for s, c in listed] == [(ERROR_CODES[c][0], c) for c in ERROR_CODES]


def test_the_dci_routes_keep_their_own_form(api):
    resp = api.post("/dci/registry/sync/search", json={})
    assert resp.status_code == 401 and resp.json()["errors"] and "error" not in resp.json()


# -- the console ------------------------------------------------------------------------------
def _browser(token: str | None = None) -> TestClient:
    c = TestClient(create_app(), base_url="http://127.0.0.1:8000", follow_redirects=False,
                   raise_server_exceptions=False)
    if token:
        assert c.post("/console/login", data={"token": token}).status_code == 303
    return c


def _page(resp, status_code: int) -> str:
    assert resp.status_code == status_code, resp.text
    assert resp.headers["content-type"].startswith("text/html") and "script-src 'none'" in \
        resp.headers["content-security-policy"]
    assert 'id="error-page"' in resp.text and f'data-status="{status_code}"' in resp.text
    assert '{"error"' not in resp.text and '"detail"' not in resp.text and "Traceback" not in resp.text
    assert 'id="error-home"' in resp.text and 'href="/console/"' in resp.text  # a way home, always
    return resp.text


def test_an_unknown_console_page_is_a_404_page_in_chinese_and_english_with_a_way_back(tokens):
    c = _browser(tokens["department"])
    zh = _page(c.get("/console/requests/" + ZERO), 404)
    assert "未找到" in zh and '<html lang="zh-CN">' in zh
    assert 'id="error-back" class="primary">返回上一级' in zh and 'href="/console/requests"' in zh
    en = _page(c.get("/console/requests/" + ZERO + "?lang=en"), 404)
    assert "Not found" in en and "Up one level" in en and '<html lang="en">' in en
    assert "Not found" in _page(c.get("/console/nowhere/at/all"), 404)  # the language cookie holds
    # a mistyped address (not a request id at all) is no page, not a form to correct
    assert "Not found" in _page(c.get("/console/requests/not-an-id"), 404)


def test_another_roles_console_page_is_a_403_page_saying_so(tokens):
    c = _browser(tokens["department"])
    zh = _page(c.get("/console/sources"), 403)
    assert "无权访问" in zh and "您当前的角色无权使用" in zh and "经办人员" in zh and 'id="error-signin"' in zh
    en = _page(c.get("/console/sources?lang=en"), 403)
    assert "Not permitted" in en and "Your role may not use" in en


def test_a_form_at_fault_is_a_422_page_naming_the_field_with_the_form_as_the_way_back():
    c = _browser()
    zh = _page(c.post("/console/login", data={"token": "x" * 300}), 422)
    assert "请修改以下内容" in zh and "访问令牌" in zh and 'data-field="token"' in zh
    assert 'id="error-back" class="primary">返回填写页面' in zh and 'href="/console/login"' in zh
    assert "x" * 300 not in zh
    en = _page(c.post("/console/login?lang=en", data={"token": "x" * 300}), 422)
    assert "Please correct the following" in en and "Back to the form" in en and "Access token</strong>: " in en


def test_every_console_refusal_ends_on_the_page(tokens):
    """The refusals the console's routes raise themselves: review (403), the record's purpose (422), the audit's
    person (404)."""
    admin = _browser(create_client("errors console admin", "admin")[1])
    assert "无权访问" in _page(admin.get("/console/review"), 403)
    caseworker = _browser(tokens["department"])
    en = _page(caseworker.get(f"/console/households/hh_{ZERO}/record?purpose=bogus&lang=en"), 422)
    assert 'data-field="purpose"><strong>Purpose</strong>: unknown<' in en
    auditor = _browser(tokens["auditor"])
    assert "未找到" in _page(auditor.get("/console/audit/persons/nonsense"), 404)


def test_a_service_refusal_a_store_failure_and_an_unexpected_error_are_pages(tokens, monkeypatch):
    from hub.web.console import pages

    c = _browser(tokens["staff"])
    monkeypatch.setattr(pages, "open_alerts", lambda: (_ for _ in ()).throw(
        OperationalError("SELECT", {}, Exception("database is locked"))))
    resp = c.get("/console/alerts?lang=en")
    assert "Temporarily unavailable" in _page(resp, 503) and resp.headers["retry-after"] == "2"
    monkeypatch.setattr(pages, "open_alerts", lambda: 1 / 0)
    en = _page(c.get("/console/alerts"), 500)
    assert "Something went wrong" in en and "ZeroDivision" not in en
    assert re.search(r'id="error-reference">[0-9A-F]{8}<', en)
    zh = _page(c.get("/console/alerts?lang=zh"), 500)
    assert "出错了" in zh and "参考编号" in zh
    # a service's NotFound (the Data Docs of a run that has none)
    assert "未找到" in _page(c.get("/console/data-docs/999999999"), 404)


def test_signing_in_is_still_a_redirect():
    resp = _browser().get("/console/sources")
    assert resp.status_code == 303 and resp.headers["location"] == "/console/login"
