"""The simulated identity provider as a relying party meets it: discovery, keys, the login page, the code flow with
PKCE, the ID token, and what it refuses."""

from __future__ import annotations

import html
import os
import re
import secrets
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import ExpiredTokenError
from joserfc.jwk import KeySet

from agencies.identity import CSP, LISTED_HOUSEHOLDS, MAX_WRONG_CODES, IdentityProvider, Refused
from agencies.server import AgencyServer, Population
from connectors.identity import CALLBACK_PATH, ID_NUMBER_CLAIM, Registration
from schemas.codes import mask_id

REG = Registration(client_id="verification-hub", client_secret=secrets.token_urlsafe(32))
REDIRECT = f"http://127.0.0.1:8765{CALLBACK_PATH}"
T = 10  # seconds of any HTTP call


@pytest.fixture(scope="module")
def population() -> Population:
    return Population(seed=1, n=30)


@pytest.fixture
def provider(population):
    idp = IdentityProvider(population, REG).start()
    yield idp
    idp.stop()


def people(population: Population):
    return [p for hh in population.households for p in hh.members]


def request_params(**over) -> tuple[dict, str]:
    """A valid authorization request (overridden by ``over``; None leaves a parameter out) and its code verifier."""
    verifier = generate_token(48)
    params = {"response_type": "code", "client_id": REG.client_id, "redirect_uri": REDIRECT, "scope": "openid profile",
              "state": generate_token(16), "nonce": generate_token(16),
              "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"}
    params.update(over)
    return {k: v for k, v in params.items() if v is not None}, verifier


def login_form(page: str) -> tuple[str, str]:
    """The login attempt's id and the code of the simulated text message, as the page shows them."""
    login = re.search(r'name="login" value="([^"]+)"', page).group(1)
    code = re.search(r"(?:模拟短信验证码：|Simulated text message code: )(\d{6})", page).group(1)
    return login, code


def open_login(provider: IdentityProvider, **over) -> tuple[str, str, dict, str]:
    """GET the login page of a valid request: (login id, displayed code, request parameters, verifier)."""
    params, verifier = request_params(**over)
    page = requests.get(provider.issuer + "/authorize", params=params, timeout=T)
    assert page.status_code == 200, page.text
    return *login_form(page.text), params, verifier


def submit(provider: IdentityProvider, login: str, otp: str, **fields) -> requests.Response:
    return requests.post(provider.issuer + "/authorize", data={"login": login, "otp": otp, **fields},
                         allow_redirects=False, timeout=T)


def signed_in(provider: IdentityProvider, person: str = "1-1") -> tuple[str, dict, str]:
    """A whole login on the page: (the code sent back, request parameters, verifier)."""
    login, otp, params, verifier = open_login(provider)
    resp = submit(provider, login, otp, person=person)
    assert resp.status_code == 303, resp.text
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(resp.headers["Location"]).query)
    return back["code"][0], params, verifier


def exchange(provider: IdentityProvider, code: str, verifier: str, *, redirect_uri: str = REDIRECT,
             auth=(REG.client_id, REG.client_secret), **extra) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier,
            **extra}
    return requests.post(provider.issuer + "/token", data=data, auth=auth, timeout=T)


def verified_claims(provider: IdentityProvider, id_token: str, nonce: str) -> dict:
    """The ID token's claims, its signature checked against the published JWKS, iss, aud, nonce and exp checked."""
    keys = KeySet.import_key_set(requests.get(provider.issuer + "/jwks", timeout=T).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": provider.issuer},
                          aud={"essential": True, "value": REG.client_id},
                          nonce={"essential": True, "value": nonce},
                          exp={"essential": True}, sub={"essential": True}).validate(token.claims)
    return token.claims


def test_the_discovery_document_names_the_endpoints_and_what_is_supported(provider):
    doc = requests.get(provider.discovery_url, timeout=T).json()
    issuer = provider.issuer
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", issuer)
    assert doc["issuer"] == issuer
    assert (doc["authorization_endpoint"], doc["token_endpoint"], doc["jwks_uri"]) == (
        issuer + "/authorize", issuer + "/token", issuer + "/jwks")
    assert doc["response_types_supported"] == ["code"]
    assert doc["grant_types_supported"] == ["authorization_code"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["token_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
    assert doc["scopes_supported"] == ["openid", "profile"]
    assert {"sub", "nonce", "name", ID_NUMBER_CLAIM, "birthdate", "amr"} <= set(doc["claims_supported"])


def test_the_jwks_is_one_public_rsa_2048_key(provider):
    keys = requests.get(provider.issuer + "/jwks", timeout=T).json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA" and key["kid"] == provider.key.kid and key["alg"] == "RS256"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    assert KeySet.import_key_set({"keys": keys}).keys[0].raw_value.key_size == 2048


def test_a_resident_signs_in_and_the_client_gets_a_verified_id_token(provider, population):
    doc = requests.get(provider.discovery_url, timeout=T).json()
    client = OAuth2Session(REG.client_id, REG.client_secret, scope="openid profile", redirect_uri=REDIRECT,
                           code_challenge_method="S256")
    verifier, nonce = generate_token(48), generate_token(16)
    url, state = client.create_authorization_url(doc["authorization_endpoint"], nonce=nonce, code_verifier=verifier)
    page = requests.get(url, timeout=T)
    assert page.status_code == 200
    login, otp = login_form(page.text)
    person = population.households[2].members[1]
    resp = submit(provider, login, otp, person="2-1")
    assert resp.status_code == 303
    location = resp.headers["Location"]
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert location.startswith(REDIRECT + "?") and back["state"] == [state] and back["iss"] == [provider.issuer]

    token = client.fetch_token(doc["token_endpoint"], authorization_response=location, code_verifier=verifier)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 300 and token["access_token"]
    claims = verified_claims(provider, token["id_token"], nonce)
    assert claims[ID_NUMBER_CLAIM] == person.id_number
    assert claims["name"] == person.name and claims["birthdate"] == person.birth_date.isoformat()
    assert claims["amr"] == ["otp"] and claims["exp"] == claims["iat"] + 300
    assert claims["sub"] != person.id_number and person.id_number not in claims["sub"]
    assert jwt.decode(token["id_token"], KeySet.import_key_set(provider.jwks())).header["kid"] == provider.key.kid


def test_client_secret_post_is_accepted_too(provider):
    code, params, verifier = signed_in(provider)
    resp = exchange(provider, code, verifier, auth=None, client_id=REG.client_id, client_secret=REG.client_secret)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    verified_claims(provider, resp.json()["id_token"], params["nonce"])


def test_the_subject_is_a_stable_pseudonym_per_person(provider, population):
    first, second = people(population)[:2]

    def sub(person) -> str:
        params, verifier = request_params()
        code = provider.sign_in(person.id_number, client_id=REG.client_id, redirect_uri=REDIRECT,
                                state=params["state"], nonce=params["nonce"], code_challenge=params["code_challenge"])
        return verified_claims(provider, exchange(provider, code, verifier).json()["id_token"], params["nonce"])["sub"]

    assert sub(first) == sub(first) != sub(second)
    assert re.fullmatch(r"[0-9a-f]{64}", sub(first))


def test_a_code_serves_once(provider):
    code, _, verifier = signed_in(provider)
    assert exchange(provider, code, verifier).status_code == 200
    again = exchange(provider, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert again.headers["Cache-Control"] == "no-store"


def test_a_wrong_code_verifier_is_refused(provider):
    code, _, verifier = signed_in(provider)
    resp = exchange(provider, code, generate_token(48))
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    assert "id_token" not in resp.text


def test_a_redirect_uri_other_than_the_authorization_requests_is_refused(provider):
    code, _, verifier = signed_in(provider)
    resp = exchange(provider, code, verifier, redirect_uri=f"http://127.0.0.1:8766{CALLBACK_PATH}")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_an_expired_code_is_refused(provider):
    provider.code_ttl_s = 0
    code, _, verifier = signed_in(provider)
    resp = exchange(provider, code, verifier)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("auth", ["wrong secret", "other client", "none", "both methods"])
def test_bad_client_authentication_is_refused_and_spends_no_code(provider, auth):
    code, _, verifier = signed_in(provider)
    if auth == "wrong secret":
        resp = exchange(provider, code, verifier, auth=(REG.client_id, REG.client_secret + "x"))
    elif auth == "other client":
        resp = exchange(provider, code, verifier, auth=("someone-else", REG.client_secret))
    elif auth == "none":
        resp = exchange(provider, code, verifier, auth=None)
    else:
        resp = exchange(provider, code, verifier, client_secret=REG.client_secret)
    if auth == "both methods":
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    else:
        assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
        assert resp.headers["WWW-Authenticate"].startswith("Basic")
    assert exchange(provider, code, verifier).status_code == 200


@pytest.mark.parametrize("change", [
    {"redirect_uri": f"https://127.0.0.1:8765{CALLBACK_PATH}"},
    {"redirect_uri": f"http://192.168.1.10:8765{CALLBACK_PATH}"},
    {"redirect_uri": f"http://evil.example{CALLBACK_PATH}"},
    {"redirect_uri": f"http://127.0.0.1@evil.example{CALLBACK_PATH}"},
    {"redirect_uri": "http://127.0.0.1:8765/m/other"},
    {"redirect_uri": f"http://127.0.0.1:8765{CALLBACK_PATH}/x"},
    {"redirect_uri": f"http://127.0.0.1:8765{CALLBACK_PATH}?next=x"},
    {"redirect_uri": f"http://127.0.0.1:8765{CALLBACK_PATH}#x"},
    {"redirect_uri": None},
    {"client_id": "someone-else"},
    {"client_id": None},
], ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))}")
def test_a_bad_client_or_redirect_uri_gets_an_error_page_not_a_redirect(provider, change):
    params, _ = request_params(**change)
    resp = requests.get(provider.issuer + "/authorize", params=params, allow_redirects=False, timeout=T)
    assert resp.status_code == 400 and "Location" not in resp.headers
    assert resp.headers["Content-Type"].startswith("text/html") and 'name="login"' not in resp.text


def test_a_repeated_redirect_uri_gets_an_error_page(provider):
    params, _ = request_params()
    query = urllib.parse.urlencode(params) + "&" + urllib.parse.urlencode({"redirect_uri": REDIRECT})
    resp = requests.get(provider.issuer + "/authorize?" + query, allow_redirects=False, timeout=T)
    assert resp.status_code == 400 and "Location" not in resp.headers


@pytest.mark.parametrize("change, error", [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "profile"}, "invalid_scope"),
    ({"code_challenge": None}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"nonce": None}, "invalid_request"),
    ({"state": None}, "invalid_request"),
], ids=lambda v: str(v))
def test_other_errors_go_back_to_the_redirect_uri(provider, change, error):
    params, _ = request_params(**change)
    resp = requests.get(provider.issuer + "/authorize", params=params, allow_redirects=False, timeout=T)
    assert resp.status_code == 303
    location = resp.headers["Location"]
    back = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert location.startswith(REDIRECT + "?") and back["error"] == [error] and "code" not in back
    assert back.get("state") == ([params["state"]] if "state" in params else None)


def test_localhost_with_any_port_is_a_good_redirect_uri(provider):
    login, otp, params, _ = open_login(provider, redirect_uri=f"http://localhost:54321{CALLBACK_PATH}")
    resp = submit(provider, login, otp, person="0-0")
    assert resp.status_code == 303 and resp.headers["Location"].startswith(f"http://localhost:54321{CALLBACK_PATH}?")


def test_a_wrong_code_shows_the_page_again_and_the_attempt_survives(provider):
    login, otp, _, _ = open_login(provider)
    wrong = f"{(int(otp) + 1) % 10 ** 6:06d}"
    resp = submit(provider, login, wrong, person="1-0")
    assert resp.status_code == 401
    assert login_form(resp.text) == (login, otp)
    assert "验证码不正确" in resp.text
    assert submit(provider, login, otp, person="1-0").status_code == 303


def test_the_sixth_wrong_code_ends_the_attempt(provider):
    login, otp, _, _ = open_login(provider)
    wrong = f"{(int(otp) + 1) % 10 ** 6:06d}"
    for _ in range(MAX_WRONG_CODES):
        resp = submit(provider, login, wrong, person="1-0")
        assert resp.status_code == 401 and login_form(resp.text)[0] == login
    ended = submit(provider, login, wrong, person="1-0")
    assert ended.status_code == 401 and 'name="login"' not in ended.text
    assert "error=access_denied" in html.unescape(ended.text)
    assert submit(provider, login, otp, person="1-0").status_code == 400


def test_a_login_attempt_serves_one_sign_in(provider):
    login, otp, _, _ = open_login(provider)
    assert submit(provider, login, otp, person="0-0").status_code == 303
    again = submit(provider, login, otp, person="0-0")
    assert again.status_code == 400 and "Location" not in again.headers


def test_an_expired_login_attempt_is_refused(provider):
    provider.login_ttl_s = 0
    login, otp, _, _ = open_login(provider)
    resp = submit(provider, login, otp, person="0-0")
    assert resp.status_code == 400 and "Location" not in resp.headers


def test_anyone_of_the_population_signs_in_by_id_number_and_a_stranger_does_not(provider, population):
    outside = population.households[LISTED_HOUSEHOLDS + 3].members[0]
    login, otp, params, verifier = open_login(provider)
    unknown = submit(provider, login, otp, person="0-0", id_number="11010519491231002X")
    assert unknown.status_code == 400 and "生成的人口中没有这个身份证号" in unknown.text
    assert login_form(unknown.text) == (login, otp)
    resp = submit(provider, login, otp, person="0-0", id_number=outside.id_number)
    assert resp.status_code == 303
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(resp.headers["Location"]).query)["code"][0]
    claims = verified_claims(provider, exchange(provider, code, verifier).json()["id_token"], params["nonce"])
    assert claims[ID_NUMBER_CLAIM] == outside.id_number


def test_the_login_page_masks_id_numbers_and_is_served_under_a_strict_policy(provider, population):
    params, _ = request_params()
    resp = requests.get(provider.issuer + "/authorize", params=params, timeout=T)
    page = resp.text
    assert resp.headers["Content-Security-Policy"] == CSP
    assert "script-src 'none'" in CSP and "frame-ancestors 'none'" in CSP
    assert resp.headers["Cache-Control"] == "no-store"
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "统一身份认证（模拟）" in page and "模拟器" in page and '<html lang="zh-CN">' in page
    assert "<script" not in page and not re.search(r'(?:src|href)="(?:https?:)?//', page)
    listed = [p for hh in population.households[:LISTED_HOUSEHOLDS] for p in hh.members]
    options = re.findall(r"<option value=\"[^\"]+\"[^>]*>([^<]*)</option>", page)
    assert len(options) == len(listed)
    for person, option in zip(listed, options):
        assert option == f"{html.escape(person.name)} {mask_id(person.id_number)}"
        assert re.fullmatch(r"\d{4}\*{10}[\dX]{4}", mask_id(person.id_number))
    assert not [p for p in people(population) if p.id_number in page]


def test_the_login_page_switches_to_english(provider):
    params, _ = request_params()
    zh = requests.get(provider.issuer + "/authorize", params=params, timeout=T).text
    link = html.unescape(re.search(r'<a href="([^"]+)"[^>]*>English</a>', zh).group(1))
    en = requests.get(provider.issuer + link, timeout=T)
    assert en.status_code == 200 and '<html lang="en">' in en.text
    assert "Unified identity service (simulated)" in en.text and "simulator for testing" in en.text
    assert re.search(r"Simulated text message code: \d{6}", en.text) and "模拟短信验证码" not in en.text
    login, otp = login_form(en.text)
    wrong = submit(provider, login, f"{(int(otp) + 1) % 10 ** 6:06d}", person="0-0", lang="en")
    assert wrong.status_code == 401 and "The code is not correct" in wrong.text


def test_nothing_is_logged(provider, capfd):
    signed_in(provider)
    requests.get(provider.issuer + "/authorize", params={"client_id": "x"}, timeout=T)
    requests.post(provider.issuer + "/token", data={"grant_type": "authorization_code"}, timeout=T)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_the_test_hooks_issue_codes_and_tokens(provider, population):
    person = people(population)[5]
    params, verifier = request_params()
    hook = dict(client_id=REG.client_id, redirect_uri=REDIRECT, state=params["state"], nonce=params["nonce"],
                code_challenge=params["code_challenge"])
    code = provider.sign_in(person.id_number, **hook)
    claims = verified_claims(provider, exchange(provider, code, verifier).json()["id_token"], params["nonce"])
    assert claims[ID_NUMBER_CLAIM] == person.id_number
    with pytest.raises(Refused):
        provider.sign_in(person.id_number, **{**hook, "redirect_uri": "http://evil.example" + CALLBACK_PATH})
    with pytest.raises(LookupError):
        provider.sign_in("11010519491231002X", **hook)
    expired = provider.issue_id_token({**claims, "iat": claims["iat"] - 900, "exp": claims["iat"] - 600})
    with pytest.raises(ExpiredTokenError):
        verified_claims(provider, expired, params["nonce"])


def test_the_agencies_index_lists_the_provider_when_the_hub_is_registered():
    server = AgencyServer.from_hub_home(households=30, seed=1, registration=REG).start()
    try:
        index = requests.get(server.url, timeout=T).json()
        issuer = server.identity.issuer
        assert index["identity"] == {"issuer": issuer, "discovery": issuer + "/.well-known/openid-configuration"}
        assert requests.get(index["identity"]["discovery"], timeout=T).json()["issuer"] == issuer
        assert issuer not in [s["base_url"] for s in index["sources"]]
    finally:
        server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(issuer + "/jwks", timeout=T)
    bare = AgencyServer.from_hub_home(households=30, seed=1, registration=None).start()
    try:
        assert bare.identity is None and "identity" not in bare.index()
    finally:
        bare.stop()


# -- in a browser -----------------------------------------------------------------------------------------------


@pytest.fixture
def phone():
    """Headless Chromium (Debian's) at the size of a phone, 390x844."""
    from tests.support.console import CHROMEDRIVER, CHROMIUM, PHONE

    if os.environ.get("HUB_SKIP_BROWSER") == "1":
        pytest.skip("HUB_SKIP_BROWSER=1: browser tests are skipped")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars",
                f"--window-size={PHONE[0]},{PHONE[1]}", "--no-first-run", "--disable-extensions",
                "--disable-background-networking"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    d.set_page_load_timeout(20)
    try:  # a window narrower than 500 px needs the device emulation
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": True})
        yield d
    finally:
        d.quit()


@pytest.fixture
def callback():
    """The client's loopback redirect URI, answered by a tiny server that records the queries it gets."""
    got: list[str] = []

    class Callback(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self):
            got.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}{CALLBACK_PATH}", got
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_on_a_phone_the_page_is_readable_and_its_form_gets_back_to_the_client(provider, phone, callback, lang):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.support.console import assert_readable, follow

    redirect_uri, got = callback
    params, _ = request_params(redirect_uri=redirect_uri, **({"lang": "en"} if lang == "en" else {}))
    phone.get(provider.issuer + "/authorize?" + urllib.parse.urlencode(params))
    assert phone.execute_script("return document.documentElement.clientWidth") == 390
    assert_readable(phone, f"login page ({lang})")
    _, otp = login_form(phone.page_source)
    Select(phone.find_element(By.ID, "person")).select_by_value("3-0")
    phone.find_element(By.ID, "otp").send_keys(f"{(int(otp) + 1) % 10 ** 6:06d}")
    follow(phone, phone.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert phone.find_element(By.CSS_SELECTOR, ".msg").is_displayed()
    assert_readable(phone, f"wrong code page ({lang})")
    phone.find_element(By.ID, "otp").send_keys(otp)
    follow(phone, phone.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert phone.current_url.startswith(redirect_uri + "?")  # the CSP's form-action lets the redirect through
    back = urllib.parse.parse_qs(urllib.parse.urlsplit([p for p in got if p.startswith(CALLBACK_PATH)][-1]).query)
    assert back["state"] == [params["state"]] and back["code"]
