"""The residents' pages (/m/: not in /openapi.json, so schemathesis does not see them) with any path, query and form
value, signed in as a resident and not: a 2xx, 3xx or 4xx answer, never a server error, never a signing done by a
forged form, and no ID number of the input in an answer. The JSON among them (a proof download) with any entry
number. The sign-in's return (state, code, error, iss) with any value: refused, never a session."""

from __future__ import annotations

import re
import urllib.parse
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.store import SigningInvitation, session
from hub.web.app import create_app
from tests.support.fuzz import assert_no_ids, ci, id_numbers
from tests.support.households import population
from tests.support.residents import BASE, signed_in_browser
from tests.support.servers import rate_limits_off

# an ID number standing on its own: not a run of digits inside a longer token (a session's hex token or a text's
# SHA-256 on a form may hold eighteen digits in a row by chance)
WHOLE_ID = re.compile(r"(?<![0-9A-Z])([0-9]{17}[0-9X])(?![0-9A-Z])")
VALUES = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=80),
    st.integers().map(str), id_numbers(),
    st.sampled_from(["", " ", "\x00", "-1", "0", "1", str(2**63), "9" * 400, "%00", "../../etc/passwd", "<script>",
                     "A" * 22, "0" * 32, "sign", "decline", "household", "self", "source", "bank", "en", "zh",
                     "/m/", "//evil.example/", "https://evil.example/", "http://127.0.0.1:9"]),
)


@pytest.fixture(autouse=True, scope="module")
def _no_limits():
    yield from rate_limits_off("HUB_AIRFLOW_URL")


@pytest.fixture(scope="module")
def app():
    return create_app()


@pytest.fixture(scope="module")
def signed_in(app, agencies_module):
    return signed_in_browser(app, agencies_module, population().households[0].members[0].id_number)


@pytest.fixture(scope="module")
def agencies_module():
    from tests.support.servers import serve_agencies

    yield from serve_agencies("none")


GETS = ["/m/", "/m/assistance", "/m/data", "/m/consents", "/m/messages", "/m/apply", "/m/requests/{x}",
        "/m/s/{x}", "/m/data/{x}/proof.json", "/m/login"]


def _ok(resp, *inputs):
    assert resp.status_code < 500, (resp.status_code, resp.text[:300])
    assert_no_ids(resp.text, *inputs)
    assert_no_ids(resp.headers.get("location", ""), *inputs)


@given(path=st.sampled_from(GETS), x=VALUES, query=st.dictionaries(
    st.sampled_from(["lang", "before", "next", "done", "x"]), VALUES, max_size=3))
@ci(0.4)
def test_any_address_of_m_is_answered_without_a_server_error(signed_in, path, x, query):
    url = path.replace("{x}", quote(x, safe="")) if "{x}" in path else path
    _echoes_at_most_its_address(signed_in.get(url, params=query))


def _echoes_at_most_its_address(resp) -> None:
    """No server error, and no ID number on the page but what its own address holds (the language switch keeps a
    page's path and query)."""
    assert resp.status_code < 500, (resp.status_code, resp.text[:300])
    echoed = urllib.parse.unquote_plus(str(resp.request.url)).upper()
    found = set(WHOLE_ID.findall(resp.text.upper()))
    assert not {f for f in found if f not in echoed}, "a whole ID number on a resident's page"


@given(path=st.sampled_from(["/m/s/{x}", "/m/consents/{x}/withdraw", "/m/apply", "/m/logout"]), x=VALUES,
       form=st.dictionaries(st.sampled_from(["csrf", "choice", "financial", "text_sha256", "scope", "source",
                                             "programme", "division", "relation", "name_1", "id_1", "relation_1"]),
                            VALUES, max_size=6))
@ci(0.3)
def test_any_form_is_refused_or_answered_and_signs_nothing_without_the_sessions_token(app, signed_in, path, x, form):
    before = _signed()
    url = path.replace("{x}", quote(x, safe="")) if "{x}" in path else path
    if path == "/m/logout":  # on a browser of its own: the fuzzer's session stays signed in
        c = TestClient(app, base_url=BASE, follow_redirects=False)
        _ok(c.post(url, data=form), x, form)
        return
    _ok(signed_in.post(url, data=form), x, form)
    assert _signed() == before  # no drawn csrf is the session's: nothing is signed or declined


@given(params=st.dictionaries(st.sampled_from(["state", "code", "error", "iss", "x"]), VALUES, max_size=4))
@ci(0.3)
def test_any_sign_in_return_is_refused_without_a_session(app, agencies_module, params):
    c = TestClient(app, base_url=BASE, follow_redirects=False)
    resp = c.get("/m/auth/callback", params=params)
    _echoes_at_most_its_address(resp)
    assert resp.status_code in (401, 422) and "hub_resident=" not in resp.headers.get("set-cookie", "")


def _signed() -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(SigningInvitation)
                        .where(SigningInvitation.state != "pending")) or 0
