"""The console's sign-in and the staff's validation pages (Data Docs, quarantine), and the quarantine API."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.web.app import create_app
from hub.web.ratelimit import Limit, Limiter
from hub.services.clients import create_client
from core.crypto import keyring
from hub.stages.intake import create_request
from hub.stages.pipeline import fetch_source, validate_batch
from core.store import ConsoleSession, QuarantinedRow, SourceRow, ValidationRun, aad_source_row, session
from tests.support.households import sample


@pytest.fixture(scope="module")
def tokens():
    return {role: create_client(f"{role} user", role, "MZ-210302" if role == "department" else None)[1]
            for role in ("staff", "department", "auditor")}


def browser(token: str | None = None, lang: str | None = None) -> TestClient:
    c = TestClient(create_app(), base_url="http://127.0.0.1:8000", follow_redirects=False)
    if token:
        resp = c.post("/console/login", data={"token": token})
        assert resp.status_code == 303 and resp.headers["location"] == "/console/"
    return c


@pytest.fixture(scope="module")
def failed_run(tokens):
    """A household batch with one row whose ID check character is wrong, validated."""
    from agencies.server import AgencyServer

    server = AgencyServer.from_hub_home(households=50, seed=7).start()
    try:
        request_id = create_request(sample(46))
        batch = fetch_source(request_id, "household", base_url=server.base_url("household"))
    finally:
        server.stop()
    keys = keyring()
    with session() as s:
        row = s.scalars(select(SourceRow).where(SourceRow.batch_id == batch, SourceRow.row_no == 0)).one()
        data = json.loads(keys.decrypt(row.data_enc, aad=aad_source_row(batch, 0)))
        data["id_number"] = data["id_number"][:17] + ("0" if data["id_number"][17] != "0" else "1")
        row.data_enc = keys.encrypt(json.dumps(data, ensure_ascii=False), aad=aad_source_row(batch, 0))
    validate_batch(batch, run_id="console-test")
    with session() as s:
        run = s.scalars(select(ValidationRun).where(ValidationRun.batch_id == batch,
                                                    ValidationRun.suite == "household_suite")).one()
        return {"run": run.id, "batch": batch, "bad_id": data["id_number"], "name": data["name"]}


def test_console_pages_need_a_session_and_a_bad_token_is_refused():
    c = browser()
    for path in ("/console/", "/console/data-docs/", "/console/quarantine", "/console/data-docs/1"):
        resp = c.get(path)
        assert resp.status_code == 303 and resp.headers["location"] == "/console/login", path
    resp = c.post("/console/login", data={"token": "hub_forged"})
    assert resp.status_code == 401 and "令牌无效" in resp.text and "hub_session" not in resp.cookies
    c.cookies.set("hub_session", "forged-session", path="/console")
    assert c.get("/console/").status_code == 303


def test_the_session_cookie_is_httponly_strict_and_only_its_hash_is_stored(tokens):
    c = TestClient(create_app(), base_url="http://127.0.0.1:8000", follow_redirects=False)
    resp = c.post("/console/login", data={"token": tokens["staff"]})
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    value = re.search(r"hub_session=([^;]+)", cookie).group(1)
    with session() as s:
        stored = s.scalars(select(ConsoleSession.token_sha256)).all()
    assert value not in stored and len(stored) >= 1
    assert c.post("/console/logout").status_code == 303
    assert c.get("/console/").status_code == 303  # signed out: the session is gone


def test_staff_reach_the_data_docs_of_a_run_from_the_console(tokens, failed_run):
    c = browser(tokens["staff"])
    index = c.get("/console/data-docs/", params={"failed": "true"})
    assert index.status_code == 200 and "数据校验结果" in index.text
    assert f'href="/console/data-docs/{failed_run["run"]}"' in index.text
    page = c.get(f"/console/data-docs/{failed_run['run']}")
    assert page.status_code == 200
    html = page.text
    assert "household_suite" in html and "console-test" in html
    assert "id_check_ok" in html  # GX rendered the failing expectation
    assert failed_run["bad_id"] not in html and failed_run["name"] not in html  # counts only, no values
    assert not re.search(r'<(script|link|img)\b[^>]*(src|href)="https?://', html)  # nothing loaded from outside
    assert "<script" not in html and "script-src 'none'" in page.headers["content-security-policy"]
    asset = re.search(r'href="(/console/data-docs/static/[^"]+)"', html)  # GX's own assets come from the hub
    assert asset and c.get(asset.group(1)).status_code == 200
    assert c.get("/console/data-docs/static/../../../__init__.py").status_code == 404


def test_the_console_speaks_english_on_request(tokens, failed_run):
    c = browser(tokens["staff"])
    assert "Validation results" in c.get("/console/data-docs/?lang=en").text
    assert "Validation results" in c.get("/console/data-docs/").text  # remembered
    assert "数据校验结果" in c.get("/console/data-docs/?lang=zh").text


def test_staff_read_the_quarantine_with_reasons(tokens, failed_run):
    c = browser(tokens["staff"])
    page = c.get("/console/quarantine", params={"check": "id_check_digit"})
    assert page.status_code == 200 and "身份证号校验位错误" in page.text
    assert failed_run["batch"][:12] in page.text and failed_run["bad_id"] not in page.text
    assert "ID number fails its GB 11643 check character" in c.get("/console/quarantine?lang=en").text


def test_other_roles_do_not_see_the_staff_pages(tokens, failed_run):
    for role in ("department", "auditor"):
        c = browser(tokens[role])
        assert c.get("/console/").status_code == 200
        for path in ("/console/data-docs/", f"/console/data-docs/{failed_run['run']}", "/console/quarantine"):
            assert c.get(path).status_code == 403, (role, path)


def test_the_quarantine_api_is_for_staff_and_pages_through_every_row(tokens, failed_run):
    api = TestClient(create_app(limiter=Limiter(Limit.parse("0"))))  # it pages through every row of the store
    assert api.get("/v1/quarantine").status_code == 401
    assert api.get("/v1/validation-runs").status_code == 401
    for role in ("department", "auditor"):
        assert api.get("/v1/quarantine", headers={"Authorization": f"Bearer {tokens[role]}"}).status_code == 403
    auth = {"Authorization": f"Bearer {tokens['staff']}"}
    body = api.get("/v1/quarantine", params={"batch_id": failed_run["batch"]}, headers=auth).json()
    checks = {i["expectation"] for i in body["items"]}
    assert "id_check_digit" in checks
    assert all(i["data_docs"] == f"/console/data-docs/{failed_run['run']}" for i in body["items"]
               if i["expectation"] == "id_check_digit")
    assert failed_run["bad_id"] not in json.dumps(body, ensure_ascii=False)
    with session() as s:
        total = len(s.scalars(select(QuarantinedRow.id)).all())
    seen, before = [], None
    while True:
        page = api.get("/v1/quarantine", params={"limit": 2, **({"before": before} if before else {})},
                       headers=auth).json()
        seen += [i["id"] for i in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert len(seen) == len(set(seen)) == total
    runs = api.get("/v1/validation-runs", params={"run_id": "console-test"}, headers=auth).json()["items"]
    assert {r["suite"] for r in runs} == {"household_suite", "members_suite"}
    assert any(not r["success"] and r["data_docs"] for r in runs)


def test_staff_see_failed_tasks_and_sources_health_and_acknowledge_alerts(tokens):
    from hub.airflow.alerts import open_alerts, record_failure
    from core.store import LedgerEvent, SourceCheck

    alert_id = record_failure(dag_id="source_health", task_id="summarize", run_id="scheduled__x", map_index=-1,
                              try_number=1, error="RuntimeError")
    with session() as s:
        s.add(SourceCheck(source="bank", ok=False, latency_ms=None, failure="UNREACHABLE"))
    c = browser(tokens["staff"])
    page = c.get("/console/alerts")
    assert page.status_code == 200 and "scheduled__x" in page.text and "RuntimeError" in page.text
    assert "异常 (UNREACHABLE)" in page.text
    assert browser(tokens["department"]).get("/console/alerts").status_code == 403
    done = c.post(f"/console/alerts/{alert_id}/acknowledge")
    assert done.status_code == 303 and alert_id not in {a.id for a in open_alerts()}
    assert c.post(f"/console/alerts/{alert_id}/acknowledge").status_code == 404
    with session() as s:
        assert any(e.payload.get("alert_id") == alert_id for e in
                   s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "alert.acknowledged")))


def test_times_are_shown_in_beijing_time_and_say_so(tokens, failed_run):
    from hub.services.export import beijing

    with session() as s:
        run = s.get(ValidationRun, failed_run["run"])
    utc_text = run.created_at.strftime("%Y-%m-%d %H:%M:%S")
    local_text = beijing(run.created_at).strftime("%Y-%m-%d %H:%M:%S")
    assert local_text != utc_text  # eight hours apart
    c = browser(tokens["staff"])
    page = c.get("/console/data-docs/")
    assert local_text in page.text and utc_text not in page.text
    assert "北京时间（UTC+8）" in page.text
    assert "Beijing time (UTC+8)" in c.get("/console/data-docs/?lang=en").text
    csv = c.get("/console/quarantine.csv?lang=zh").content.decode("utf-8-sig")
    assert csv.splitlines()[0].startswith("时间（北京时间）,"), csv[:200]
