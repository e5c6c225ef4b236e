"""Schemathesis over the whole /openapi.json: every operation, with a valid token of the role it needs.

No server error, and every answer conforms to the documented statuses, headers and schemas. The positive-data
check is left out: the API rightly refuses (422) schema-valid input its schema cannot express (ID check characters,
date order, webhook schemes, pagination cursors of another department)."""

from __future__ import annotations

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from hub.services.clients import create_client
from hub.web.app import create_app
from hub.web.ratelimit import Limit, Limiter
from tests.support.servers import rate_limits_off

app = create_app(limiter=Limiter(Limit.parse("0")))  # made before any fixture: without rate limits of its own
# the token comes from the test, not from generated security parameters (which schemathesis would also negate)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=schemathesis.Config.from_dict(
    {"generation": {"with-security-parameters": False}}))
ROLE_BY_TAG = {"requests": "department", "applications": "department", "records": "department", "assistance": "department",
               "notifications": "department", "audit": "auditor", "validation": "staff", "admin": "admin",
               "dci": "federation"}


@pytest.fixture(scope="module", autouse=True)
def _no_rate_limit():
    yield from rate_limits_off()


@pytest.fixture
def tokens():
    # a department of its own: no household is its case, so what the fuzzer subscribes is never notified
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from connectors.envelope import public_key_b64

    made = {role: create_client(f"fuzz {role}", role, "MZ-FUZZ" if role == "department" else None)[1]
            for role in ("department", "auditor", "staff", "admin")}
    # a federated platform (DCI routes): what the fuzzer sends it cannot sign, so every message is refused
    return made | {"federation": create_client("fuzz federation", "federation", "HUB-FUZZ", public_key=public_key_b64(
        Ed25519PrivateKey.generate().public_key()))[1]}


def test_every_operation_is_fuzzed_with_a_role():
    ops = [op.ok() for op in schema.get_all_operations()]
    assert len(ops) >= 20 and all(o.tags and o.tags[0] in ROLE_BY_TAG for o in ops if o.path.startswith(("/v1/", "/dci/"))
                                  and o.path not in ("/v1/policy", "/v1/keys/record-signing"))
    assert sum(o.path.startswith("/dci/registry/") for o in ops) == 11


@schema.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api(case, database, tokens):  # on SQLite and on PostgreSQL (which refuses NUL characters in text)
    role = ROLE_BY_TAG.get((case.operation.tags or [""])[0], "department")
    case.call_and_validate(headers={"Authorization": f"Bearer {tokens[role]}"},
                           excluded_checks=[positive_data_acceptance])


def test_the_lookup_without_agencies_answers_503_as_documented(tokens, monkeypatch):
    monkeypatch.setenv("HUB_AGENCIES_URL", "http://127.0.0.1:9/")  # nothing listens
    form = base64.b64encode(b"%PDF-1.4\n% a signed form\n" + b"0" * 2000 + b"\n%%EOF\n").decode()
    case = schema["/v1/household-lookup"]["POST"].Case(
        body={"id_number": "11010519491231002X", "purpose": "dibao", "case_ref": "FUZZ-1",
              "signed_form": {"media_type": "application/pdf", "content_base64": form}})
    resp = case.call_and_validate(headers={"Authorization": f"Bearer {tokens['department']}"},
                                  excluded_checks=[positive_data_acceptance, not_a_server_error])  # 503 is expected
    assert resp.status_code == 503 and resp.headers["retry-after"] == ["30"]


def test_a_throttled_client_gets_the_documented_429(tokens, monkeypatch):
    # the app's own limiter, for this test (monkeypatch.setattr on a State would delete it on undo)
    monkeypatch.setitem(app.state._state, "limiter", Limiter(Limit.parse("0.01/1")))
    case = schema["/v1/policy"]["GET"].Case()
    auth = {"Authorization": f"Bearer {tokens['auditor']}"}
    assert case.call_and_validate(headers=auth).status_code == 200
    resp = case.call_and_validate(headers=auth)
    assert resp.status_code == 429 and int(resp.headers["retry-after"][0]) >= 1
