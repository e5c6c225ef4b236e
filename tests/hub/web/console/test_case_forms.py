"""The caseworker's forms step (step 2 of a new request) over HTTP: checked member by member before anything is
made. An adult without a form is a blocking message on their row, never a silent drop; a guardian's financial
consent covers the minors they sign for; a missing financial consent is a warning to accept, naming the sources the
gate will refuse; every problem brings the members page back with every field kept, in the user's language."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agencies.population import household_in_population
from core.crypto import keyring
from core.store import Authorization, AuthorizationMember, Request, session
from hub.services.clients import create_client
from hub.web.app import create_app
from hub.web.console.case import MemberRow, check_rows, consents_of, preview_refusals
from schemas.vocabulary import FINANCIAL_SOURCES

K = 18  # head, spouse, two minor sons, a parent
DEPARTMENT = "MZ-210388"
SIGNED_PDF = b"%PDF-1.4\n% signed by the head\n" + b"0" * 2000 + b"\n%%EOF\n"
SOURCES = ["household", "tax", "bank", "securities"]


@pytest.fixture(scope="module")
def api():
    from tests.support.servers import serve_agencies

    gen = serve_agencies("none")
    next(gen)
    try:
        c = TestClient(create_app(), base_url="http://127.0.0.1:8000", follow_redirects=False)
        assert c.post("/console/login", data={"token": create_client("forms", "department", DEPARTMENT)[1]}
                      ).status_code == 303
        yield c
    finally:
        next(gen, None)


@pytest.fixture(scope="module")
def household():
    return household_in_population(7, 50, K)


def members_page(api, household, lang="zh") -> tuple[str, dict]:
    head = next(m for m in household.members if m.relation == "head")
    page = api.post(f"/console/requests/lookup?lang={lang}",
                    data={"purpose": "dibao", "case_ref": "MZ-2026-FORMS", "id_number": head.id_number},
                    files={"applicant_form": ("form.pdf", SIGNED_PDF, "application/pdf")})
    assert page.status_code == 200 and 'id="members"' in page.text, page.text[:400]
    rows = {}  # ID number -> row number
    for k, idn in re.findall(r'name="m(\d+)_id" value="([^"]+)"', page.text):
        rows[idn] = int(k)
    return page.text, rows


def form_of(html: str) -> dict:
    """What a browser sends of the page as it stands: hidden fields, ticked boxes, chosen options, the numbers."""
    data: dict = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    data.update({n: "on" for n in re.findall(r'<input type="checkbox" name="(m\d+_include)" id="[^"]+" checked>', html)})
    for name, options in re.findall(r'<select name="(m\d+_guardian)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="(\d+)" selected', options) or re.search(r'<option value="(\d+)"', options)
        data[name] = chosen.group(1)
    data["sources"] = re.findall(r'name="sources" value="([^"]+)" checked', html)
    data.update(dict(re.findall(r'<input type="number" name="(\w+)" value="([^"]*)"', html)))
    return data


def pdf(text: str) -> bytes:
    return f"scan of {text}".encode()


def sha(text: str) -> str:
    return hashlib.sha256(pdf(text)).hexdigest()


def requests_made() -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(Request).where(Request.department == DEPARTMENT))


def test_a_forgotten_adult_form_blocks_on_its_row_and_keeps_everything(api, household):
    html, rows = members_page(api, household)
    by_rel = {m.relation: m for m in household.members if m.relation in ("head", "spouse", "parent")}
    head, spouse, parent = (rows[by_rel[r].id_number] for r in ("head", "spouse", "parent"))
    minors = [rows[m.id_number] for m in household.members if m.relation == "son"]
    data = form_of(html)
    data.update({"sources": SOURCES, "valid_days": "200", "recheck_days": "60", f"m{minors[0]}_guardian": str(parent)})
    files = [(f"m{parent}_form", ("p.pdf", pdf("parent"), "application/pdf")),  # the spouse's is forgotten
             (f"m{head}_fin_form", ("hf.pdf", pdf("head fin"), "application/pdf")),
             (f"m{spouse}_fin_form", ("sf.pdf", pdf("spouse fin"), "application/pdf")),
             (f"m{parent}_fin_form", ("pf.pdf", pdf("parent fin"), "application/pdf"))]
    before = requests_made()
    resp = api.post("/console/requests", data={**data, "action": "submit"}, files=files)
    assert resp.status_code == 422 and requests_made() == before
    page = resp.text
    assert 'id="members"' in page and 'id="lookup-form"' not in page  # the members page, not step 1
    # the message next to the spouse's form field, in Chinese, and in the summary
    err = re.search(rf'id="m{spouse}_form-error">([^<]+)<', page)
    assert err and "成年成员须上传本人签字的授权书" in err.group(1)
    assert f'id="member-{spouse}" class="has-error"' in page and "请修正以下 1 处问题" in page
    # everything kept: forms as their SHA-256 (shown as uploaded), the applicant's evidence, choices, sources, days
    kept = form_of(page)
    assert kept[f"m{parent}_form_sha256"] == sha("parent") and kept[f"m{head}_fin_sha256"] == sha("head fin")
    assert kept[f"m{head}_evidence"] == hashlib.sha256(SIGNED_PDF).hexdigest()
    assert kept[f"m{minors[0]}_guardian"] == str(parent) and kept["sources"] == SOURCES
    assert kept["valid_days"] == "200" and kept["recheck_days"] == "60"
    assert f'id="m{parent}_form-kept">已上传 ✓' in page
    assert all(kept.get(f"m{k}_include") == "on" for k in rows.values())
    # no code or English key on a Chinese page
    assert not re.search(r"[A-Z]{3,}_[A-Z_]+|err_|refusal_|members\[", page)

    # the spouse's form attached: the request is made with every member's consent
    resp = api.post("/console/requests", data={**kept, "action": "submit"},
                    files=[(f"m{spouse}_form", ("s.pdf", pdf("spouse"), "application/pdf"))])
    assert resp.status_code == 303, resp.text[:2000]
    request_id = resp.headers["location"].rsplit("/", 1)[1]
    keys = keyring()
    with session() as s:
        auth = s.scalars(select(Authorization).where(Authorization.request_id == request_id)).one()
        stored = {m.person_ref: m for m in s.scalars(select(AuthorizationMember).where(
            AuthorizationMember.authorization_id == auth.id))}
    assert auth.valid_until - auth.valid_from == dt.timedelta(days=200)
    living = [m for m in household.members if m.status == "normal"]
    assert set(stored) == {keys.pseudonym(m.id_number) for m in living}
    own = {"head": hashlib.sha256(SIGNED_PDF).hexdigest(), "spouse": sha("spouse"), "parent": sha("parent")}
    fins = {"head": sha("head fin"), "spouse": sha("spouse fin"), "parent": sha("parent fin")}
    for rel, m in by_rel.items():
        row = stored[keys.pseudonym(m.id_number)]
        assert (row.evidence_sha256, row.financial_evidence_sha256) == (own[rel], fins[rel])
        assert set(row.financial_sources) == {"bank", "securities"}
    guardians = {minors[0]: by_rel["parent"], minors[1]: by_rel["head"]}  # the second kept the first adult offered
    for m in household.members:
        if m.relation == "son":
            row, g = stored[keys.pseudonym(m.id_number)], guardians[rows[m.id_number]]
            rel = next(r for r, a in by_rel.items() if a is g)
            # the guardian's financial consent covers the minor they sign for
            assert row.evidence_sha256 is None and row.guardian_ref == keys.pseudonym(g.id_number)
            assert row.financial_evidence_sha256 == fins[rel] and set(row.financial_sources) == {"bank", "securities"}


def test_a_missing_financial_consent_is_a_warning_to_accept_in_english(api, household):
    html, rows = members_page(api, household, "en")
    spouse = next(m for m in household.members if m.relation == "spouse")
    data = {**form_of(html), "sources": SOURCES}
    files = [(f"m{k}_form", (f"{k}.pdf", pdf(f"own {k}"), "application/pdf"))
             for k in rows.values() if f'name="m{k}_form"' in html]
    files += [(f"m{k}_fin_form", (f"f{k}.pdf", pdf(f"fin {k}"), "application/pdf"))
              for k in rows.values() if f'name="m{k}_fin_form"' in html and k != rows[spouse.id_number]]
    before = requests_made()
    checked = api.post("/console/requests?lang=en", data={**data, "action": "check"}, files=files)
    assert checked.status_code == 200 and requests_made() == before  # a check makes nothing
    refused = re.search(rf'id="m{rows[spouse.id_number]}_refused">(.*?)</div>', checked.text, re.S).group(1)
    assert "banks, securities — no financial consent form" in refused
    assert refused.count("<li>") == 1 and "tax" not in refused
    assert len(re.findall(r'_refused">', checked.text)) == 1  # only the spouse; the sons have the head's
    kept = form_of(checked.text)
    unaccepted = api.post("/console/requests?lang=en", data={**kept, "action": "submit"})
    assert unaccepted.status_code == 422 and requests_made() == before
    assert "confirm that you accept these refusals" in unaccepted.text
    done = api.post("/console/requests?lang=en", data={**kept, "action": "submit", "accept_refusals": "on"})
    assert done.status_code == 303, done.text[:1500]
    with session() as s:
        auth = s.scalars(select(Authorization).where(
            Authorization.request_id == done.headers["location"].rsplit("/", 1)[1])).one()
        row = s.scalars(select(AuthorizationMember).where(
            AuthorizationMember.authorization_id == auth.id,
            AuthorizationMember.person_ref == keyring().pseudonym(spouse.id_number))).one()
    assert row.evidence_sha256 and row.financial_sources == [] and row.financial_evidence_sha256 is None


def _row(k, idn, adult, **kw):
    return MemberRow(k=k, id_number=idn, name=f"m{k}", relation="other", status=kw.pop("status", "normal"),
                     adult=adult, age=40 if adult else 8, included=kw.pop("included", True), **kw)


def test_check_rows_names_each_blocking_problem_on_its_field(household):
    ids = [m.id_number for m in household.members]
    rows = [_row(0, ids[0], True, evidence="a" * 64, fin_sha256="f" * 64),
            _row(1, ids[1], True),  # no form
            _row(2, ids[2], False, guardian="1"),  # the guardian did not sign
            _row(3, ids[3], False, guardian="4"),  # the guardian is not included
            _row(4, ids[4], True, form_sha256="b" * 64, included=False),
            _row(5, "X", True, status="deceased")]
    rows[5].included = True
    check_rows(rows)
    assert [r.errors for r in rows] == [{}, {"form": "err_form_missing"}, {"guardian": "err_guardian_unsigned"},
                                        {"guardian": "err_guardian_excluded"}, {}, {"include": "err_not_living"}]
    rows[1].form_sha256, rows[3].guardian = "c" * 64, "0"
    for r in rows:
        r.errors.clear()
    rows[5].included = False
    check_rows(rows)
    assert not any(r.errors for r in rows)
    sources = ["household", "bank"]
    consents = {c["id_number"]: c for c in consents_of(rows, sources)}
    assert set(consents) == set(ids[:4])  # the included ones, none dropped
    # the minors get their guardian's financial consent, or none when the guardian gave none
    assert consents[ids[3]]["financial_consent"] == {"sources": ["bank"], "evidence_sha256": "f" * 64}
    assert "financial_consent" not in consents[ids[2]]
    refused = preview_refusals(rows, sources, dt.datetime.now(dt.timezone.utc))
    assert refused[0] == {} and refused[3] == {}
    assert refused[1] == refused[2] == {"bank": "FINANCIAL_CONSENT_MISSING"}
    assert set(refused) == {0, 1, 2, 3} and "bank" in FINANCIAL_SOURCES
