"""The console's query and path parameters (its routes are not in /openapi.json, so schemathesis does not see
them), signed in with the role each page needs, on SQLite and on PostgreSQL (which refuses NUL characters and
integers beyond its column types): any value is a 2xx, 3xx or 4xx answer, never a server error.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from hub.web.app import create_app
from hub.services.clients import create_client
from tests.support.fuzz import ci
from tests.support.servers import rate_limits_off

HEX = "0123456789abcdef"
VALUES = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=120),
    st.integers().map(str),
    st.sampled_from(["", " ", "\x00", "a\x00", "-1", "0", "1", "2147483647", "2147483648", str(2**62), str(2**63),
                     str(2**64), "9" * 40, "9" * 5000, "1e3", "1.5", "NaN", "inf", "true", "false", "on", "yes", "²",
                     "٣", "９", "0x10", "csv", "household", "bank", "dibao", "ROWS_QUARANTINED", "record.read",
                     "expect_column_values_to_not_be_null", "0" * 32, "f" * 32, "hh_" + "0" * 32, "p_" + "0" * 32,
                     "x" * 300, "%", "%00", "../../etc/passwd", "<script>", "'; DROP TABLE requests; --"]),
    st.text(HEX, min_size=32, max_size=32),
)
# values of the right form for each parameter: with them the pages run their queries, not only the validation
PLAUSIBLE = {
    "source": st.sampled_from(["household", "tax", "bank", "nowhere", ""]),
    "check": st.sampled_from(["id_check_digit", "expect_column_values_to_not_be_null", "unexpected_field", ""]),
    "before": st.integers(1, 2**31 - 1).map(str), "days": st.integers(0, 400).map(str),
    "failed": st.sampled_from(["true", "false", "1", "0"]), "run": st.text(HEX, max_size=32),
    "kind": st.sampled_from(["record.read", "consent.allowed", "client.created", "nothing", ""]),
    "purpose": st.sampled_from(["dibao", "medical", "lottery"]), "lang": st.sampled_from(["en", "zh", "fr"]),
    "/console/data-docs/{id}": st.integers(1, 2**31).map(str),
    "/console/audit/persons/{id}": st.text(HEX, min_size=32, max_size=32).map(lambda h: "p_" + h),
    "/console/requests/{id}": st.text(HEX, min_size=32, max_size=32),
    "/console/households/{id}/record": st.text(HEX, min_size=32, max_size=32).map(lambda h: "hh_" + h),
}


def value(name: str) -> st.SearchStrategy:
    return st.one_of(PLAUSIBLE[name], VALUES) if name in PLAUSIBLE else VALUES


# role -> (path template, its query parameters); {id} is filled with a drawn path value
ROUTES = {
    "staff": [
        ("/console/quarantine", ["source", "check", "before"]),
        ("/console/quarantine.{fmt}", ["source", "check"]),
        ("/console/data-docs/", ["source", "failed", "run", "before"]),
        ("/console/data-docs/{id}", []),
        ("/console/sources", ["days"]),
        ("/console/sources.{fmt}", ["days"]),
        ("/console/alerts", []),
        ("/console/", []),
    ],
    "auditor": [
        ("/console/audit/", ["kind", "before"]),
        ("/console/audit/events.{fmt}", ["kind", "days"]),
        ("/console/audit/unusual", ["days"]),
        ("/console/audit/unusual.{fmt}", ["days"]),
        ("/console/audit/persons/{id}", []),
    ],
    "department": [
        ("/console/requests", ["before"]),
        ("/console/requests/{id}", []),
        ("/console/requests/new", []),
        ("/console/households/{id}/record", ["purpose"]),
    ],
}


@pytest.fixture(scope="module", autouse=True)
def _no_rate_limit():
    yield from rate_limits_off()


@pytest.fixture(scope="module")
def app():
    return create_app()


@pytest.fixture
def browsers(database, app):
    """A signed-in browser per role, on the backend of ``database``."""
    out = {}
    for role in ROUTES:
        token = create_client(f"fuzz console {role}", role, "MZ-FUZZ" if role == "department" else None)[1]
        c = TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False)
        assert c.post("/console/login", data={"token": token}).status_code == 303
        out[role] = c
    return out


@st.composite
def console_requests(draw) -> tuple[str, str, list[tuple[str, str]]]:
    role = draw(st.sampled_from(sorted(ROUTES)))
    template, names = draw(st.sampled_from(ROUTES[role]))
    path = template.format(fmt=draw(st.sampled_from(["csv", "csv", "xlsx", "pdf", "csv%00"])),
                           id=quote(draw(value(template)), safe="") or "x")
    params = [(n, draw(value(n))) for n in names if draw(st.integers(0, 3))]
    params += draw(st.lists(st.sampled_from([*names, "lang", "limit", "x"]).flatmap(
        lambda n: st.tuples(st.just(n), value(n))), max_size=2))
    return role, path, params


@ci(0.3)
@given(req=console_requests())
@example(req=("staff", "/console/quarantine", [("before", "9" * 30)]))
@example(req=("staff", "/console/quarantine", [("before", str(2**40))]))
@example(req=("staff", "/console/data-docs/", [("before", str(2**40))]))
@example(req=("staff", "/console/data-docs/" + "9" * 30, []))
@example(req=("auditor", "/console/audit/", [("before", str(2**40))]))
@example(req=("staff", "/console/quarantine", [("source", "\x00")]))
@example(req=("staff", "/console/data-docs/", [("run", "a\x00")]))
@example(req=("auditor", "/console/audit/", [("kind", "\x00")]))
@example(req=("department", "/console/households/hh_" + "0" * 32 + "/record", [("purpose", "\x00")]))
def test_console_query_parameters_never_make_a_server_error(req, browsers):
    role, path, params = req
    resp = browsers[role].get(path, params=params)
    assert resp.status_code < 500, (role, path, resp.status_code)


@ci(0.1)
@given(count=VALUES, valid_days=VALUES, recheck=VALUES, data_life=VALUES, case_ref=VALUES)
@example(count="²", valid_days="1", recheck="1", data_life="1", case_ref="x")
@example(count="1", valid_days="9" * 5000, recheck="1", data_life="1", case_ref="x")
@example(count="1", valid_days="1", recheck="1", data_life="1", case_ref="MZ\x00")
def test_the_request_form_never_makes_a_server_error(count, valid_days, recheck, data_life, case_ref, browsers):
    """The caseworker's request form (POST /console/requests): its numbers and case number are outside input too."""
    form = {"purpose": "dibao", "case_ref": case_ref, "count": count, "valid_days": valid_days,
            "recheck_days": recheck, "data_life": data_life, "sources": ["household"], "m0_include": "on",
            "m0_id": "11010519491231002X", "m0_name": "张三", "m0_relation": "head", "m0_evidence": "ab" * 32}
    resp = browsers["department"].post("/console/requests", data=form)
    assert resp.status_code < 500, resp.status_code
