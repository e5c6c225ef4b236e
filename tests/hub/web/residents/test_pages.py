"""/m/ over HTTP (the app under TestClient at a loopback address, the simulated agencies and identity provider):
sign-in and its session cookie, every page behind it, what a resident may reach (their own only: anything else is
404), the forms' session token, errors in the resident's language, the ID number never whole on a page or in an
address; and the department's side of residents' applications and of mobile signing in the JSON API."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from consent import ledger
from consent.tree import check_proof, checkpoint_now, verifier_key
from core.crypto import keyring
from core.store import LedgerEvent, SigningInvitation, session
from hub.services.clients import create_client
from hub.web.app import create_app
from tests.support.households import population
from tests.support.residents import BASE, browser, signed_in_browser, signing_request, tokens
from tests.support.servers import rate_limits_off

A, B = "MZ-210302", "MZ-210304"


@pytest.fixture(autouse=True, scope="module")
def _no_limits():
    yield from rate_limits_off("HUB_AIRFLOW_URL")


@pytest.fixture(scope="module")
def app():
    return create_app()


def _form(page: str) -> dict:
    return {k: re.search(rf'name="{k}" value="([^"]*)"', page).group(1) for k in ("csrf", "text_sha256")}


def _no_id(resp, *id_numbers):
    for idn in id_numbers:
        assert idn not in resp.text and idn not in resp.headers.get("location", "")
        assert idn not in str(resp.url)


def test_sign_in_gives_a_short_lived_httponly_cookie_and_a_state_is_used_once(app, agencies):
    person = population().households[0].members[0]
    c = browser(app)
    go = c.get("/m/login", params={"next": "/m/assistance"})
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(go.headers["location"]).query))
    assert q["redirect_uri"] == BASE + "/m/auth/callback" and q["code_challenge_method"] == "S256"
    code = agencies.identity.sign_in(person.id_number, client_id=q["client_id"], redirect_uri=q["redirect_uri"],
                                     state=q["state"], nonce=q["nonce"], code_challenge=q["code_challenge"])
    back = c.get("/m/auth/callback", params={"state": q["state"], "code": code})
    assert back.status_code == 303 and back.headers["location"] == "/m/assistance"
    cookie = back.headers["set-cookie"]
    assert "hub_resident=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Path=/m" in cookie and "Max-Age=1800" in cookie
    home = c.get("/m/")
    assert home.status_code == 200 and person.name in home.text
    assert person.id_number[:4] + "*" * 10 + person.id_number[14:] in home.text
    _no_id(home, person.id_number)
    again = browser(app).get("/m/auth/callback", params={"state": q["state"], "code": code})
    assert again.status_code == 401 and 'data-code="unknown_login"' in again.text
    with session() as s:
        why = [e.payload["why"] for e in s.scalars(select(LedgerEvent).where(
            LedgerEvent.kind == "resident.sign_in_refused"))]
    assert "unknown_login" in why
    cancelled = browser(app)
    q2 = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(cancelled.get("/m/login").headers["location"]).query))
    denied = cancelled.get("/m/auth/callback", params={"state": q2["state"], "error": "access_denied"})
    assert denied.status_code == 401 and "统一身份认证未完成登录" in denied.text
    assert "hub_resident" not in denied.headers.get("set-cookie", "")
    mixed = browser(app)
    q3 = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(mixed.get("/m/login").headers["location"]).query))
    code3 = agencies.identity.sign_in(person.id_number, client_id=q3["client_id"], redirect_uri=q3["redirect_uri"],
                                      state=q3["state"], nonce=q3["nonce"], code_challenge=q3["code_challenge"])
    other = mixed.get("/m/auth/callback", params={"state": q3["state"], "code": code3, "iss": "http://127.0.0.1:9"})
    assert other.status_code == 401 and 'data-code="wrong_issuer"' in other.text  # a mix-up: the code is not sent
    out = c.post("/m/logout")
    assert out.status_code == 303
    assert c.get("/m/assistance").status_code == 303  # the session is gone


DOOR = {"/m/", "/m/login", "/m/auth/callback", "/m/logout"}  # open to anyone: the way in and out
PARAMS = {"request_id": "0" * 32, "authorization_id": "0" * 32, "seq": "1", "token": "A" * 22}


def test_every_page_but_the_door_sends_a_stranger_tosigned_in_browser(app):
    """Every route of /m/ (found in the app, so a new one cannot be missed) without a session: the door answers,
    everything else sends the stranger to sign in and shows nothing."""
    c = browser(app)
    assert c.get("/m/").status_code == 200 and "/m/login" in c.get("/m/").text
    routes = [(m, r.path) for r in app.routes if getattr(r, "path", "").startswith("/m/")
              for m in sorted(getattr(r, "methods", ()) or ()) if m != "HEAD"]
    assert len(routes) >= 14
    for method, path in routes:
        if path in DOOR:
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path)
        resp = c.request(method, url, data={} if method == "POST" else None)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/m/login"), (method, path)
        assert "hub_resident" not in resp.headers.get("set-cookie", "")


@pytest.mark.parametrize("given, kept", [
    ("/m/data", "/m/data"), ("https://evil.example/", "/m/"), ("//evil.example/m/", "/m/"), ("/console/", "/m/"),
    ("/m/\\evil", "/m/"), (None, "/m/"), ("/m/ x", "/m/")])
def test_after_sign_in_only_a_page_of_m_is_returned_to(given, kept):
    from hub.services.residents import safe_return

    assert safe_return(given) == kept


def test_a_resident_reaches_their_own_and_nothing_else(app, agencies):
    rid, doc = signing_request(0)
    other_rid, other_doc = signing_request(2)
    links = tokens(rid)
    head_id = doc["members"][0]["id_number"]
    head = signed_in_browser(app, agencies, head_id)
    page = head.get(f"/m/s/{links[0]}")
    assert page.status_code == 200 and "本人签署" in page.text
    _no_id(page, *(m["id_number"] for m in doc["members"]))
    forged = head.post(f"/m/s/{links[0]}", data={"choice": "sign", "text_sha256": _form(page.text)["text_sha256"]})
    assert forged.status_code == 403  # no session token: not from this session's page
    with session() as s:
        assert s.scalars(select(SigningInvitation.state).where(SigningInvitation.request_id == rid)).all()[0] == \
            "pending"
    signed = head.post(f"/m/s/{links[0]}", data={**_form(page.text), "choice": "sign", "financial": "yes"})
    assert signed.status_code == 200 and 'data-signed="yes"' in signed.text
    twice = head.post(f"/m/s/{links[0]}", data={**_form(page.text), "choice": "sign"})
    assert twice.status_code == 409 and 'data-code="used"' in twice.text
    others = tokens(other_rid)
    theirs = head.get(f"/m/s/{others[0]}", params={"lang": "en"})
    assert theirs.status_code == 403 and "an adult cannot sign for another adult" in theirs.text
    assert head.get(f"/m/requests/{other_rid}").status_code == 404
    assert head.get(f"/m/requests/{rid}").status_code == 200
    assert head.get("/m/requests/not-an-id").status_code == 404
    assert head.get("/m/s/" + "A" * 22).status_code == 404
    gone = head.post(f"/m/consents/{'0' * 32}/withdraw",
                     data={"csrf": _form(page.text)["csrf"], "scope": "self"})
    assert gone.status_code == 404
    for path in ("/m/", "/m/assistance", "/m/data", "/m/consents", "/m/messages", "/m/apply", f"/m/requests/{rid}"):
        for lang in ("zh", "en"):
            resp = head.get(path, params={"lang": lang})
            assert resp.status_code == 200, path
            assert resp.headers["content-security-policy"].startswith("default-src 'self'")
            assert resp.headers["cache-control"] == "no-store"
            assert ('lang="en"' if lang == "en" else 'lang="zh-CN"') in resp.text
            _no_id(resp, *(m["id_number"] for m in doc["members"] + other_doc["members"]))


def test_a_minor_is_told_to_have_a_guardian_sign_in_their_language(app, agencies):
    rid, doc = signing_request(0)
    from consent.authorizations import adult_from
    import datetime as dt

    minor = next(i for i, m in enumerate(doc["members"]) if adult_from(m["id_number"]) > dt.date.today())
    child = signed_in_browser(app, agencies, doc["members"][minor]["id_number"])
    link = tokens(rid)[minor]
    zh = child.get(f"/m/s/{link}")
    assert zh.status_code == 403 and "未满 18 周岁" in zh.text
    en = child.get(f"/m/s/{link}", params={"lang": "en"})
    assert "Members under 18 cannot sign themselves" in en.text
    assert "hub_m_lang=en" in en.headers["set-cookie"] and "Path=/m" in en.headers["set-cookie"]


def test_my_data_downloads_proofs_that_hold_and_only_of_my_entries(app, agencies):
    with session() as s:  # someone else's entry, whichever tests ran before this one (or none)
        foreign = ledger.append(s, "console.signed_in", {"client_id": "someone-else"}).seq
    rid, doc = signing_request(3)
    person = doc["members"][0]["id_number"]
    c = signed_in_browser(app, agencies, person)
    page = c.get(f"/m/s/{tokens(rid)[0]}")
    c.post(f"/m/s/{tokens(rid)[0]}", data={**_form(page.text), "choice": "decline"})
    before = c.get("/m/data")
    assert before.status_code == 200 and "consent.declined" in before.text
    seqs = [int(x) for x in re.findall(r'data-seq="(\d+)"', before.text)]
    if "/proof.json" not in before.text:  # no checkpoint covers them yet: said so, no link
        assert c.get(f"/m/data/{seqs[0]}/proof.json").status_code == 409
    checkpoint_now(keyring().signing_key)
    data = c.get("/m/data")
    links = re.findall(r'/m/data/(\d+)/proof\.json', data.text)
    assert links
    got = c.get(f"/m/data/{links[0]}/proof.json")
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    check_proof(got.json())
    assert got.json()["verifier_key"] == verifier_key(keyring().public_key)  # the key to check it with
    assert c.get(f"/m/data/{foreign}/proof.json").status_code == 404


def test_a_department_decides_residents_applications_and_sees_its_own_only(app, agencies):
    _, token_a = create_client("caseworker A", "department", A)
    _, token_b = create_client("caseworker B", "department", B)
    api = TestClient(app, base_url=BASE)
    hh = population().households[4]  # six members: the applicant names two of them
    head = signed_in_browser(app, agencies, hh.members[0].id_number)
    form = head.get("/m/apply")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    fields = {"csrf": csrf, "programme": "dibao", "division": "210302", "relation": "head"}
    for n, m in enumerate(hh.members[1:3], 1):
        fields |= {f"name_{n}": m.name, f"id_{n}": m.id_number, f"relation_{n}": m.relation}
    bad = head.post("/m/apply", data={**fields, "id_1": "110105194912310021"})
    assert bad.status_code == 422
    sent = head.post("/m/apply", data=fields)
    assert sent.status_code == 303 and sent.headers["location"] == "/m/apply?done=1"
    mine = api.get("/v1/applications", headers={"Authorization": f"Bearer {token_a}"}).json()["items"]
    app_id = next(a["id"] for a in mine if a["members"][0]["id_number"] == hh.members[0].id_number)
    assert len(next(a for a in mine if a["id"] == app_id)["members"]) == 1 + len(hh.members[1:3])
    auth_b = {"Authorization": f"Bearer {token_b}"}
    assert all(a["id"] != app_id for a in api.get("/v1/applications", headers=auth_b).json()["items"])
    assert api.get(f"/v1/applications/{app_id}", headers=auth_b).status_code == 404
    assert api.post(f"/v1/applications/{app_id}/decision", json={"decision": "accept"},
                    headers=auth_b).status_code == 404
    auth_a = {"Authorization": f"Bearer {token_a}"}
    assert api.post(f"/v1/applications/{app_id}/decision", json={"decision": "decline"},
                    headers=auth_a).status_code == 422  # a reason is required
    ok = api.post(f"/v1/applications/{app_id}/decision", json={"decision": "accept"}, headers=auth_a)
    assert ok.status_code == 200 and ok.json()["status"] == "accepted"
    request_id = ok.json()["request_id"]
    assert api.post(f"/v1/applications/{app_id}/decision", json={"decision": "accept"},
                    headers=auth_a).status_code == 409
    req = api.get(f"/v1/requests/{request_id}", headers=auth_a).json()
    assert req["status"] == "signing"
    inv = api.get(f"/v1/requests/{request_id}/invitations", headers=auth_a).json()["items"]
    assert len(inv) == 1 + len(hh.members[1:3]) and all(i["state"] == "pending" and "/m/s/" in i["link"] for i in inv)
    assert api.get(f"/v1/requests/{request_id}/invitations", headers=auth_b).status_code == 404
    home = head.get("/m/")
    assert "sign-link" in home.text  # the applicant's own link waits on their home page
    listed = head.get("/m/apply")
    assert f'data-application="{app_id}" data-status="accepted"' in listed.text
    _no_id(listed, *(m.id_number for m in hh.members[1:3]))


def test_the_access_log_keeps_no_signing_token_or_sign_in_code(app):
    import logging

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/m/auth/callback?state=S3cretState&code=C0de", "1.1", 303),
                               None)
    for f in logging.getLogger("uvicorn.access").filters:
        f.filter(record)
    assert "C0de" not in record.getMessage() and "/m/auth/callback" in record.getMessage()
    link = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                             ("127.0.0.1:5", "GET", "/m/s/Tok3nOfAMember", "1.1", 200), None)
    for f in logging.getLogger("uvicorn.access").filters:
        f.filter(link)
    assert "Tok3nOfAMember" not in link.getMessage() and "/m/s/<token>" in link.getMessage()


def test_withdrawing_a_whole_consent_needs_the_box_ticked_and_the_message_says_what_went(app, agencies):
    from sqlalchemy import func

    from consent.authorizations import adult_from
    from core.store import Revocation
    import datetime as dt

    rid, doc = signing_request(3)
    links = tokens(rid)
    people = [m["id_number"] for m in doc["members"]]
    adults = [i for i, idn in enumerate(people) if adult_from(idn) <= dt.date.today()]
    browsers = {}
    for i in adults:
        browsers[i] = c = signed_in_browser(app, agencies, people[i])
        page = c.get(f"/m/s/{links[i]}")
        assert c.post(f"/m/s/{links[i]}", data={**_form(page.text), "choice": "sign"}).status_code == 200
    for i, idn in enumerate(people):
        if i not in adults:
            c = browsers[adults[0]]
            page = c.get(f"/m/s/{links[i]}")
            assert c.post(f"/m/s/{links[i]}", data={**_form(page.text), "choice": "sign"}).status_code == 200
    c = browsers[adults[0]]
    consents = c.get("/m/consents")
    auth_id = re.search(r'data-authorization="(\w+)"', consents.text).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', consents.text).group(1)

    def revocations() -> int:
        with session() as s:
            return s.scalar(select(func.count()).select_from(Revocation)
                            .where(Revocation.authorization_id == auth_id)) or 0

    unticked = c.post(f"/m/consents/{auth_id}/withdraw", data={"csrf": csrf, "scope": "self"})
    assert unticked.status_code == 422 and 'id="confirm-needed"' in unticked.text and revocations() == 0
    one = c.post(f"/m/consents/{auth_id}/withdraw", data={"csrf": csrf, "scope": "source", "source": "tax"})
    assert one.status_code == 303 and revocations() == 1
    ticked = c.post(f"/m/consents/{auth_id}/withdraw", data={"csrf": csrf, "scope": "self", "confirm": "yes"})
    assert ticked.status_code == 303 and revocations() == 2
    said = c.get("/m/messages").text
    assert "对“税务”的授权已撤回，其他数据不受影响" in said and "您在“最低生活保障”核对中的授权已撤回" in said
