"""The caseworker's side of residents on their phones, in the console over HTTP: the applications made to the
department (decline needs a reason; accepting makes a request whose page shows each member's QR code and link),
another department's applications out of reach, and the members step's "sign on their phones" button."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from hub.services import applications
from hub.services.clients import create_client
from hub.web.app import create_app
from tests.support.households import population
from tests.support.residents import signing_request
from tests.support.servers import rate_limits_off

A, B = "MZ-210302", "MZ-210304"


@pytest.fixture(autouse=True, scope="module")
def _no_limits():
    yield from rate_limits_off("HUB_AIRFLOW_URL")


def _console(department: str) -> TestClient:
    c = TestClient(create_app(), base_url="http://127.0.0.1:8000", follow_redirects=False)
    _, token = create_client(f"caseworker {department}", "department", department)
    assert c.post("/console/login", data={"token": token}).status_code == 303
    return c


def _apply(k: int) -> str:
    hh = population().households[k]
    head, *others = hh.members
    return applications.submit(
        applicant_ref="p_" + "a" * 32, applicant=applications.Member(head.id_number, head.name, "head"),
        others=[applications.Member(m.id_number, m.name, m.relation) for m in others[:2]], programme="dibao",
        division="210302")


def test_a_caseworker_accepts_or_declines_the_departments_applications(agencies):
    declined, accepted = _apply(1), _apply(3)
    mine, theirs = _console(A), _console(B)
    page = mine.get("/console/applications")
    assert page.status_code == 200 and declined in page.text and accepted in page.text
    assert declined not in theirs.get("/console/applications").text
    assert theirs.post(f"/console/applications/{accepted}", data={"decision": "accept"}).status_code == 404
    no_reason = mine.post(f"/console/applications/{declined}", data={"decision": "decline", "reason": " "})
    assert no_reason.status_code == 422 and "请填写不予受理的原因" in no_reason.text
    said = mine.post(f"/console/applications/{declined}", data={"decision": "decline", "reason": "户籍不在本区"})
    assert said.status_code == 303 and said.headers["location"] == "/console/applications"
    assert applications.of_department(declined, A).reason == "户籍不在本区"
    took = mine.post(f"/console/applications/{accepted}", data={"decision": "accept"})
    assert took.status_code == 303 and took.headers["location"].startswith("/console/requests/")
    request_page = mine.get(took.headers["location"])
    assert request_page.status_code == 200 and 'data-stage="signing"' in request_page.text
    qr = re.findall(r'<div class="qr"><svg', request_page.text)
    links = re.findall(r'class="ref inv-link"[^>]*>([^<]+)<', request_page.text)
    assert len(qr) == len(links) == 3 and all("/m/s/" in u for u in links)
    again = mine.post(f"/console/applications/{accepted}", data={"decision": "decline", "reason": "x"})
    assert again.status_code == 409
    en = mine.get(took.headers["location"], params={"lang": "en"})
    assert "Waiting for the members to sign on their phones" in en.text


def test_the_members_step_can_send_the_request_to_the_members_phones(agencies):
    c = _console(A)
    hh = population().households[0]
    form = {"purpose": "dibao", "case_ref": "MZ-2026-M1", "sources": ["household", "tax", "bank"],
            "count": str(len(hh.members)), "action": "mobile", "valid_days": "180", "recheck_days": "90",
            "data_life": "30"}
    for k, m in enumerate(hh.members):
        form |= {f"m{k}_id": m.id_number, f"m{k}_name": m.name, f"m{k}_relation": m.relation, f"m{k}_status": "normal",
                 f"m{k}_include": "on"}
    made = c.post("/console/requests", data=form)
    assert made.status_code == 303, made.text[:500]
    page = c.get(made.headers["location"])
    assert page.text.count('<div class="qr"><svg') == len(hh.members)
    none = c.post("/console/requests", data={**form, "sources": []})
    assert none.status_code == 422  # nothing to ask: the same page back, nothing made


def test_a_request_signed_on_paper_shows_no_codes(agencies):
    rid, _ = signing_request(2)
    c = _console(A)
    assert c.get(f"/console/requests/{rid}").text.count('<div class="qr"><svg') > 0
    from tests.support.households import applied

    paper = applied(2, sources=("household",))
    assert '<div class="qr">' not in c.get(f"/console/requests/{paper}").text
