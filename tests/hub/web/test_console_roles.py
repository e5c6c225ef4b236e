"""The caseworkers', auditors' and staff's console pages over HTTP (FastAPI's test client), with the real store
and simulated agencies: 一证通办 from one ID number to a published, printable record; the auditor's integrity
check, timeline and unusual reads; staff's sources page; CSV and Excel downloads; each role kept to its pages."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from agencies.population import household_in_population
from hub.web.app import create_app
from hub.services.clients import create_client
from core.crypto import keyring
from hub.services.export import Column, to_csv
from hub.stages.pipeline import run_inline
from core.store import LedgerEvent, Request, session

K = 21  # the generated household the caseworker starts from
# the applicant's signed form: a PDF (the hub checks its type and size, 1 KiB to 5 MiB, and keeps it encrypted)
SIGNED_PDF = b"%PDF-1.4\n% signed by the head\n" + b"0" * 2000 + b"\n%%EOF\n"


def browser(token: str | None = None) -> TestClient:
    c = TestClient(create_app(), base_url="http://127.0.0.1:8000", follow_redirects=False)
    if token:
        assert c.post("/console/login", data={"token": token}).status_code == 303
    return c


@pytest.fixture(scope="module")
def tokens():
    return {"caseworker": create_client("caseworker", "department", "MZ-210311")[1],
            "medical": create_client("medical caseworker", "department", "YB-210311")[1],
            "auditor": create_client("auditor", "auditor")[1], "staff": create_client("staff", "staff")[1]}


@pytest.fixture(scope="module")
def household():
    return household_in_population(7, 50, K)


def _members_form(html: str) -> dict:
    """The hidden and default fields of the members page, as a browser would send them."""
    data = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    for name in re.findall(r'<input type="checkbox" name="(m\d+_include)" id="[^"]+" checked>', html):
        data[name] = "on"
    for name in re.findall(r'<select name="(m\d+_guardian)"', html):
        data[name] = re.search(rf'<select name="{name}"[^>]*>\s*<option value="(\d+)"', html).group(1)
    return data


@pytest.fixture(scope="module")
def submitted(tokens, household):
    """A caseworker's request made in the console from the head's ID number, verified inline."""
    from tests.support.servers import serve_agencies as _serve

    gen = _serve("none")
    next(gen)
    try:
        c = browser(tokens["caseworker"])
        head = next(m for m in household.members if m.relation == "head")
        page = c.post("/console/requests/lookup", data={"purpose": "dibao", "case_ref": "MZ-2026-0042",
                                                        "id_number": head.id_number},
                      files={"applicant_form": ("form.pdf", SIGNED_PDF, "application/pdf")})
        assert page.status_code == 200, page.text
        data = _members_form(page.text)
        data["sources"] = ["household", "tax", "bank", "real_estate"]
        files = [(f"m{k}_form", (f"m{k}.pdf", f"signed by member {k}".encode(), "application/pdf"))
                 for k in range(int(data["count"])) if f'name="m{k}_form"' in page.text]
        files += [(f"m{k}_fin_form", (f"f{k}.pdf", f"financial consent {k}".encode(), "application/pdf"))
                  for k in range(int(data["count"])) if f'name="m{k}_fin_form"' in page.text]
        done = c.post("/console/requests", data=data, files=files)
        assert done.status_code == 303, done.text
        request_id = done.headers["location"].rsplit("/", 1)[1]
        run_inline(request_id)
        yield {"client": c, "request_id": request_id, "members_page": page.text, "head": head}
    finally:
        next(gen, None)


def test_lookup_fills_in_the_household_from_registration(submitted, household):
    html = submitted["members_page"]
    for m in household.members:
        assert m.id_number in html and m.name in html  # the caseworker's own case: entitled
    normal = [m for m in household.members if m.status == "normal"]
    assert html.count("_include\" checked") == len(normal)
    with session() as s:
        req = s.get(Request, submitted["request_id"])
        assert req.department == "MZ-210311" and req.purpose == "dibao" and req.status == "published"
        lookups = [e.payload for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "household.lookup"))]
    assert any(p["outcome"] == "found" and p["applicant_ref"] == keyring().pseudonym(submitted["head"].id_number)
               for p in lookups)


def test_the_caseworker_follows_the_request_and_prints_the_record(submitted, household):
    c = submitted["client"]
    listing = c.get("/console/requests")
    assert submitted["request_id"] in listing.text and "MZ-2026-0042" in listing.text
    detail = c.get(f"/console/requests/{submitted['request_id']}")
    assert 'data-status="published"' in detail.text and "户籍" in detail.text
    link = re.search(r'id="read-record"[^>]* href="([^"]+)"', detail.text).group(1).replace("&amp;", "&")
    record = c.get(link)
    assert record.status_code == 200
    assert "家庭经济状况核对报告" in record.text and 'id="screening"' in record.text
    normal = [m for m in household.members if m.status == "normal"]
    assert all(m.name in record.text for m in normal)
    assert all(m.id_number not in record.text for m in household.members)  # masked in the record
    assert "@media print" in record.text
    english = c.get(link + "&lang=en")
    assert "Household economic status record" in english.text


def test_a_household_without_an_open_case_shows_no_record(submitted, tokens):
    with session() as s:
        hh = s.get(Request, submitted["request_id"]).household_ref
    other = browser(tokens["medical"])  # a medical-security caseworker: no case for this household
    resp = other.get(f"/console/households/{hh}/record?purpose=medical")
    assert resp.status_code == 404 and 'id="not-entitled"' in resp.text and 'id="record-members"' not in resp.text


def test_the_lookup_refuses_a_bad_id_and_a_missing_form_without_echoing_them(tokens, household):
    c = browser(tokens["caseworker"])
    idn = household.members[0].id_number
    wrong = idn[:17] + ("0" if idn[17] != "0" else "1")
    resp = c.post("/console/requests/lookup", data={"purpose": "dibao", "case_ref": "X-1", "id_number": wrong},
                  files={"applicant_form": ("f.pdf", SIGNED_PDF, "application/pdf")})
    assert resp.status_code == 422 and 'id="form-error"' in resp.text and wrong not in resp.text
    assert "身份证号" in resp.text
    resp = c.post("/console/requests/lookup", data={"purpose": "dibao", "case_ref": "X-1", "id_number": idn})
    assert resp.status_code == 422 and idn not in resp.text and "签字授权书" in resp.text
    # a document that is not what its type says (a PNG sent as a PDF), one too small: refused, saying what is needed
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 2048
    for name, document, media_type in (("f.pdf", png, "application/pdf"), ("f.pdf", b"%PDF-1.4 %%EOF", "application/pdf"),
                                       ("f.txt", SIGNED_PDF, "text/plain")):
        resp = c.post("/console/requests/lookup", data={"purpose": "dibao", "case_ref": "X-1", "id_number": idn},
                      files={"applicant_form": (name, document, media_type)})
        assert resp.status_code == 422 and "PDF、JPEG或PNG" in resp.text and idn not in resp.text
    with session() as s:
        refused = [e.payload for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "household.lookup")
                                                .order_by(LedgerEvent.seq.desc()).limit(5))]
    assert [p["why"] for p in refused] == ["signed_form.media_type", "signed_form", "signed_form", "signed_form",
                                           "id_number"]


def test_a_department_over_its_hourly_lookups_gets_a_page_saying_when_to_retry(tokens, household, monkeypatch):
    monkeypatch.setenv("HUB_LOOKUP_PER_HOUR", "1")
    monkeypatch.setenv("HUB_AGENCIES_URL", "http://127.0.0.1:9/")  # down: the lookup is counted all the same
    _, token = create_client("hasty caseworker", "department", "MZ-210381")
    c = browser(token)
    idn = household.members[0].id_number
    form = {"purpose": "dibao", "case_ref": "X-2", "id_number": idn}
    first = c.post("/console/requests/lookup", data=form, files={"applicant_form": ("f.pdf", SIGNED_PDF,
                                                                                    "application/pdf")})
    assert first.status_code == 503
    over = c.post("/console/requests/lookup", data=form, files={"applicant_form": ("f.pdf", SIGNED_PDF,
                                                                                   "application/pdf")})
    assert over.status_code == 429 and 3500 < int(over.headers["retry-after"]) <= 3600
    assert 'id="form-error"' in over.text and "已达上限（1次）" in over.text and "60分钟后" in over.text
    assert idn not in over.text
    english = c.post("/console/requests/lookup?lang=en", data=form,
                     files={"applicant_form": ("f.pdf", SIGNED_PDF, "application/pdf")})
    assert english.status_code == 429 and "its 1 household lookups of the past hour" in english.text


def test_the_auditor_sees_integrity_a_persons_timeline_and_unusual_reads(submitted, tokens, household):
    from consent.tree import make_checkpoint

    with session() as s:
        make_checkpoint(s, keyring().signing_key)
        hh = s.get(Request, submitted["request_id"]).household_ref
    assert browser(tokens["caseworker"]).get(f"/console/households/{hh}/record?purpose=dibao").status_code == 200
    browser(tokens["medical"]).get(f"/console/households/{hh}/record?purpose=medical")  # refused: unusual
    browser(tokens["caseworker"]).post("/console/requests/lookup", data={  # no signed form: refused, unusual
        "purpose": "dibao", "case_ref": "X-3", "id_number": submitted["head"].id_number})
    c = browser(tokens["auditor"])
    home = c.get("/console/audit/")
    # entries came after the checkpoint: amber, until the auditor signs one (a form; back to a green page)
    assert home.status_code == 200 and 'data-state="amber"' in home.text and 'id="sign-checkpoint"' in home.text
    assert browser(tokens["caseworker"]).post("/console/audit/checkpoint").status_code == 403  # auditors only
    signed = c.post("/console/audit/checkpoint")
    assert signed.status_code == 303 and signed.headers["location"].startswith("/console/audit/?signed=")
    assert 'id="intact"' in c.get(signed.headers["location"]).text
    found = c.post("/console/audit/person", data={"id_number": submitted["head"].id_number})
    ref = keyring().pseudonym(submitted["head"].id_number)
    assert found.status_code == 303 and found.headers["location"] == f"/console/audit/persons/{ref}"
    timeline = c.get(found.headers["location"])
    kinds = set(re.findall(r'data-kind="([a-z_.]+)"', timeline.text))
    assert {"entrustment.received", "consent.allowed", "fetch.completed", "record.published",
            "record.read", "household.lookup"} <= kinds, kinds  # the lookup made from the head's ID number
    assert all(m.id_number not in timeline.text and m.name not in timeline.text for m in household.members)
    unusual = c.get("/console/audit/unusual")
    assert 'data-kind="no_open_case"' in unusual.text
    assert 'data-kind="lookup_refused"' in unusual.text and "被拒绝的户籍成员查询" in unusual.text
    bad = c.post("/console/audit/person", data={"id_number": "110101199003071234"})
    assert bad.status_code == 422 and "110101199003071234" not in bad.text

    csv_resp = c.get(f"/console/audit/persons/{ref}/timeline.csv")
    assert csv_resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_resp.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(csv_resp.content.decode("utf-8-sig"))))
    assert rows[0] == ["序号", "时间（北京时间）", "类型代码", "类型", "账号", "部门", "部门代码", "用途", "业务编号", "内容",
                       "详情"]
    shown = set(re.findall(r'<tr data-kind="[^"]+" data-seq="(\d+)">', timeline.text))
    exported = {r[0]: r[2] for r in rows[1:]}
    assert shown and shown <= set(exported)  # and what came after the page: the auditor's own look at this person
    assert {kind for seq, kind in exported.items() if seq not in shown} <= {"audit.read"}
    xlsx = c.get(f"/console/audit/persons/{ref}/timeline.xlsx?lang=en")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert [c.value for c in sheet[1]] == ["Seq", "When (Beijing time)", "Kind", "Kind (name)", "Account", "Department",
                                           "Department code", "Purpose", "Case number", "What", "Details"]
    assert sheet.max_row >= len(rows)
    unusual_x = load_workbook(io.BytesIO(c.get("/console/audit/unusual.xlsx").content)).active
    assert any(r[2] == "无有效委托的查阅" for r in unusual_x.iter_rows(min_row=2, values_only=True))
    with session() as s:
        reads = [e.payload for e in s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "audit.read"))]
    assert any(p.get("what") == "timeline" and p.get("person_ref") == ref for p in reads)


def test_staff_see_sources_health_freshness_and_pass_rates_with_downloads(submitted, tokens):
    c = browser(tokens["staff"])
    page = c.get("/console/sources")
    assert page.status_code == 200 and page.text.count("<tr data-source=") == 11
    assert "good-bar" in page.text  # the validation runs of the verified request
    book = load_workbook(io.BytesIO(c.get("/console/sources.xlsx").content)).active
    assert book.max_row == 12 and book["A1"].value == "数据来源"
    by_source = {r[0]: r for r in book.iter_rows(min_row=2, values_only=True)}
    assert by_source["户籍"][5] >= 1 and 0 <= by_source["户籍"][6] <= 1
    q = c.get("/console/quarantine.csv")
    assert q.status_code == 200 and q.content.startswith("\ufeff".encode())


def test_each_role_is_kept_to_its_own_pages(tokens, submitted):
    pages = {"caseworker": ["/console/requests", "/console/requests/new"],
             "auditor": ["/console/audit/", "/console/audit/unusual", "/console/audit/events.csv"],
             "staff": ["/console/sources", "/console/sources.csv", "/console/quarantine", "/console/alerts"]}
    roles = {"caseworker": "caseworker", "medical": "caseworker", "auditor": "auditor", "staff": "staff"}
    for who, token in tokens.items():
        c = browser(token)
        for owner, paths in pages.items():
            for path in paths:
                code = c.get(path).status_code
                mine = owner == roles[who]
                assert code == (200 if mine else 403), (who, path, code)
    anonymous = browser()
    for paths in pages.values():
        for path in paths:
            resp = anonymous.get(path)
            assert resp.status_code == 303 and resp.headers["location"] == "/console/login"


def test_an_exported_cell_never_runs_as_a_formula():
    cols = [Column("v", "值", "Value")]
    text = to_csv([{"v": "=HYPERLINK(\"http://x\")"}, {"v": "+1"}, {"v": "-2"}, {"v": "@SUM(A1)"}, {"v": "ok"}],
                  cols, "en").decode("utf-8-sig")
    values = [r[0] for r in csv.reader(io.StringIO(text))][1:]
    assert values == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "ok"]
