"""Bearer tokens and console session cookies under hostile input.

hub.services.clients.authenticate and hub.web.console.pages.session_client take any text (unicode, lone surrogates, NUL, very
long) and answer None; over HTTP (FastAPI's test client) any Authorization header an HTTP client can send is a
401 and any Cookie a redirect to the sign-in page, never a server error.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from hub.services import clients
from hub.web.console import pages as console
from hub.web.app import create_app
from tests.support.fuzz import ci
from tests.support.servers import rate_limits_off

ANY_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=300),  # lone surrogates too
    st.text(st.characters(codec="latin-1"), max_size=300),  # what arrives in a header
    st.sampled_from(["", "\x00", "hub_\x00", "hub_" + "A" * 43, "Bearer", "hub_" + "A" * 253, "x" * 10_000,
                     "\ud800", "hub_\udfff", "ｈｕｂ_", "hub_" + "é" * 43]),
)
# an HTTP field value: visible ASCII, spaces and tabs inside, and obs-text (0x80-0xFF), as bytes
FIELD_VALUE = st.binary(max_size=300).map(
    lambda b: bytes(c for c in b if c in (0x09, 0x20) or 0x21 <= c <= 0x7E or c >= 0x80).strip(b" \t"))


@pytest.fixture(scope="module", autouse=True)
def _no_rate_limit():
    """Guessed tokens cost the guesser's address its budget (429); here every guess must be a 401."""
    yield from rate_limits_off()


@pytest.fixture(scope="module")
def token(module_database):  # on SQLite and on PostgreSQL (which refuses NUL characters in text)
    return clients.create_client("fuzz tokens", "auditor")[1]


@pytest.fixture(scope="module")
def app(module_database):
    return create_app()


def test_a_real_token_and_session_still_work(token):
    client = clients.authenticate(token)
    assert client is not None and client.role == "auditor"
    assert console.session_client(console.start_session(client)) == client


@ci()
@given(text=ANY_TEXT)
@example(text="\ud800")
@example(text="hub_\x00")
def test_any_text_is_no_token_and_no_session(text, token):
    assert clients.authenticate(text) is None
    assert console.session_client(text) is None
    assert clients.authenticate(token + text) is None if text else True


@ci(0.5)
@given(value=FIELD_VALUE, scheme=st.sampled_from([b"Bearer ", b"bearer ", b"Basic ", b"", b"Bearer  ", b"Bearer\t"]))
@example(value="é".encode("latin-1"), scheme=b"Bearer ")
def test_any_authorization_header_is_a_401(value, scheme, app):
    http = TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False)
    for method, path in (("GET", "/v1/requests"), ("GET", "/v1/audit/checkpoint"), ("POST", "/v1/requests")):
        resp = http.request(method, path, headers={"Authorization": scheme + value})
        assert resp.status_code == 401, (path, resp.status_code)
        assert resp.headers.get("www-authenticate") == "Bearer"


@ci(0.5)
@given(value=FIELD_VALUE, named=st.booleans())
@example(value="hub_é".encode("latin-1"), named=True)
@example(value=b'"\\000"', named=True)
def test_any_session_cookie_is_a_redirect_to_sign_in(value, named, app):
    http = TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False)
    cookie = (console.COOKIE.encode() + b"=" + value) if named else value
    for path in ("/console/", "/console/quarantine", "/console/audit/", "/console/requests"):
        resp = http.get(path, headers={"Cookie": cookie})
        assert resp.status_code == 303 and resp.headers["location"] == "/console/login", (path, resp.status_code)


@ci(0.25)
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=300))
def test_any_token_typed_at_sign_in_is_refused(text, app):
    http = TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False)
    resp = http.post("/console/login", data={"token": text})
    assert resp.status_code in (401, 422), resp.status_code


def test_a_department_code_with_a_trailing_newline_is_refused():
    """``$`` in the code's pattern also matches before a final newline."""
    with pytest.raises(ValueError):
        clients.create_client("fuzz", "department", "MZ-210302\n")
