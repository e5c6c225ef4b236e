"""The request page as a caseworker follows a request (no browser): per-source progress from the store, the stage
and what happens next in words, a meta refresh while it runs and none once it ended, the record's link and the
screening answers as soon as it is published, a failure explained."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from hub.services.clients import create_client
from hub.services.requests import create
from hub.services.worker import Worker
from hub.stages import pipeline
from hub.web.app import create_app
from tests.support.households import sample

DEPARTMENT = "MZ-210302"
SOURCES = ["household", "tax", "bank", "real_estate"]
REFRESH = '<meta http-equiv="refresh" content="3">'


@pytest.fixture(autouse=True)
def _own(own_store):  # a worker claims whatever is received: this module's own requests only
    yield


def signed_in() -> tuple[TestClient, str]:
    client, token = create_client("request page caseworker", "department", DEPARTMENT)
    api = TestClient(create_app())  # not entered: no lifespan, no worker of its own
    assert api.post("/console/login", data={"token": token}, follow_redirects=False).status_code == 303
    return api, client.id


def _submit(client_id: str, k: int = 3) -> str:
    return create(sample(k, sources=SOURCES, department=DEPARTMENT), department=DEPARTMENT, client_id=client_id)


def _rows(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-source="([a-z_]+)" data-step="([a-z_]+)">', html))


def test_a_running_request_refreshes_itself_and_a_published_one_links_its_record(agencies):
    api, client_id = signed_in()
    rid = _submit(client_id)

    received = api.get(f"/console/requests/{rid}")
    assert received.status_code == 200
    html = received.text
    assert REFRESH in html and 'data-stage="waiting"' in html and 'id="read-record"' not in html
    assert _rows(html) == {s: "waiting" for s in SOURCES}
    assert "本系统的核对进程将在几秒内开始" in html  # what happens next, in words

    claim = Worker().claim(rid)
    pipeline.fetch_many([rid])  # the worker's first stage, as the page sees it half-way
    half = api.get(f"/console/requests/{rid}?lang=en").text
    assert REFRESH in half and 'data-stage="checking"' in half and "Every source answered" in half
    assert set(_rows(half).values()) <= {"answered", "incomplete"} and 'id="read-record"' not in half

    Worker().run(claim)  # the rest, as the worker does it
    done = api.get(f"/console/requests/{rid}").text
    assert "http-equiv=\"refresh\"" not in done
    assert 'data-status="published"' in done and 'data-stage="published"' in done
    link = re.search(r'<a id="read-record"[^>]* href="([^"]+)"', done)
    assert link and link.group(1).startswith("/console/households/") and "purpose=dibao" in link.group(1)
    assert set(_rows(done).values()) <= {"checked", "incomplete"} and "checked" in _rows(done).values()
    assert re.search(r'id="request-screening".*data-answer="(yes|no|needs_review)"', done, re.S)
    record = api.get(link.group(1))
    assert record.status_code == 200
    en = api.get(f"/console/requests/{rid}?lang=en").text
    assert "Record published" in en and "Rows quarantined" in en and "核对" not in en.split("<main>")[1]


def test_a_failed_request_says_why_and_what_to_do_without_refreshing(monkeypatch):
    api, client_id = signed_in()
    rid = _submit(client_id)

    def broken(request_id, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "run_inline", broken)
    assert Worker().run_once(rid).status == "failed"
    html = api.get(f"/console/requests/{rid}").text
    assert "http-equiv=\"refresh\"" not in html and 'data-stage="failed"' in html
    assert 'data-why="WORKER_ERROR"' in html and "请联系核对中心工作人员" in html and rid in html
    assert _rows(html) == {s: "not_asked" for s in SOURCES}


def test_another_departments_request_is_not_found():
    api, _ = signed_in()
    other, _token = create_client("another caseworker", "department", "YB-210312")
    rid = create(sample(3, sources=SOURCES, department="YB-210312"), department="YB-210312", client_id=other.id)
    assert api.get(f"/console/requests/{rid}").status_code == 404
