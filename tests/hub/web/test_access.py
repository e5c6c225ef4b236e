"""Who may call what, and what they get back: authentication of every route, object-level authorization between
departments (BOLA), roles, the access policy's cut, rate limits, pagination, admin clients, the auditors' routes, and
no personal data in an answer not entitled to it or in an error. The API over HTTP, with real tokens and the real
store; published records come from the simulated agencies through hub.stages.pipeline.run_inline."""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass, field

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from consent.authorizations import revoke
from hub.services import audit
from hub.web.app import create_app
from hub.web.deps import current_client
from hub.services.clients import create_client
from core.crypto import keyring
from hub.stages.intake import PURPOSES
from hub.stages.pipeline import run_inline
from hub.rules.policy import IDENTITY, PolicyError, Rule, cut, parse, rule_for
from hub.web.ratelimit import Limit, Limiter
from hub.stages.records import verify_record
from core.store import ApiClient, AssistanceGrant, Authorization, LedgerEvent, Subscription, session, utcnow
from schemas.codes import mask_id
from tests.support.households import sample
from tests.support.servers import rate_limits_off, serve_agencies as _serve
from tests.support.store import ledger_entries as _ledger, valid_until

A, B, YB = "MZ-210302", "MZ-210304", "YB-210303"
# the role each tag's routes are for; FOR_ANYONE: any authenticated client
ROLE_BY_TAG = {"requests": "department", "applications": "department", "records": "department", "assistance": "department",
               "notifications": "department", "audit": "auditor", "validation": "staff", "admin": "admin",
               "dci": "federation"}
FOR_ANYONE = {"/v1/policy", "/v1/keys/record-signing"}
WELL_FORMED = {"request_id": "0" * 32, "application_id": "0" * 32, "household_id": "hh_" + "0" * 32, "client_id": "0" * 32, "seq": "1",
               "person_ref": "p_" + "0" * 32}
TODAY = dt.datetime.now(dt.timezone.utc).date().isoformat()  # the hub's day
HOOK = "http://127.0.0.1:9/hook"  # nothing listens
# a household lookup's signed form: the document itself (a PDF of 2 KiB), base64
FORM = {"media_type": "application/pdf", "content_base64": base64.b64encode(
    b"%PDF-1.4\n% a signed authorization form\n" + b"0" * 2000 + b"\n%%EOF\n").decode()}


def _auth(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


def _v1_routes(app) -> list[tuple[str, str, object]]:
    """(method, path with well-formed parameters, route) of every route under /v1, and of the DCI API under /dci
    (same tokens: a federated platform's; tests/hub/dci/test_service.py checks its answers against the DCI spec)."""
    out = []
    for route in app.routes:
        path = getattr(route, "path", "")
        if not path.startswith(("/v1", "/dci/")):
            continue
        names = re.findall(r"{(\w+)(?::[^}]*)?}", path)
        missing = [n for n in names if n not in WELL_FORMED]
        assert not missing, f"give the path parameters {missing} of {path} a well-formed value in WELL_FORMED"
        filled = re.sub(r"{(\w+)(?::[^}]*)?}", lambda m: WELL_FORMED[m.group(1)], path)
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            out.append((method, filled, route))
    return out


def _role_of(route) -> str | None:
    if route.path in FOR_ANYONE:
        return None
    tag = (getattr(route, "tags", None) or ["?"])[0]
    assert tag in ROLE_BY_TAG, f"{route.path}: which role is tag {tag!r} for? (ROLE_BY_TAG)"
    return ROLE_BY_TAG[tag]


def _send(api, method, path, token=None, **kw):
    if method in ("POST", "PUT", "PATCH") and "json" not in kw:
        kw["json"] = {}
    return api.request(method, path, headers=_auth(token), **kw)


# -- set-up: two civil-affairs departments and a medical-security one, each with its own case -------------------
@pytest.fixture(scope="module", autouse=True)
def _no_rate_limit():
    yield from rate_limits_off("HUB_AIRFLOW_URL")


@pytest.fixture(scope="module", autouse=True)
def backend(module_database):
    """Every test of the module on each store: the session's SQLite, then the session's PostgreSQL database."""
    return module_database


@pytest.fixture(scope="module")
def app(backend):
    return create_app()


@pytest.fixture(scope="module")
def api(app):
    return TestClient(app)


@pytest.fixture(scope="module")
def city():
    yield from _serve("none")


@dataclass
class Dept:
    code: str
    client_id: str
    token: str
    members: list[dict]
    request_id: str = ""
    household: str = ""
    grant_id: str = ""
    subscriptions: list[str] = field(default_factory=list)


def _department(api, code: str, k: int, purpose: str = "dibao", grant: bool = True) -> Dept:
    client, token = create_client(f"caseworker {code}", "department", code)
    doc = sample(k, purpose=purpose, department=code)
    d = Dept(code, client.id, token, doc["members"])
    created = api.post("/v1/requests", json=doc, headers=_auth(token))
    assert created.status_code == 201, created.text
    d.request_id = created.json()["id"]
    result = run_inline(d.request_id)
    assert result.status == "published"
    d.household = result.household_ref
    if grant:
        made = api.post("/v1/assistance", headers=_auth(token), json={
            "household_id": d.household, "programme": purpose, "granted_from": TODAY, "request_id": d.request_id})
        assert made.status_code == 201, made.text
        d.grant_id = made.json()["id"]
    sub = api.post("/v1/subscriptions", json={"url": HOOK}, headers=_auth(token))
    assert sub.status_code == 201, sub.text
    d.subscriptions.append(sub.json()["id"])
    return d


@pytest.fixture(scope="module")
def world(api, city):
    depts = {"A": _department(api, A, 1), "B": _department(api, B, 2), "YB": _department(api, YB, 7, "medical")}
    tokens = {role: create_client(f"{role} (access tests)", role)[1] for role in ("auditor", "staff", "admin")}
    yield {**depts, **tokens}
    with session() as s:  # later tests' notifications must not go to these webhooks
        s.execute(update(Subscription).where(Subscription.id.in_([i for d in depts.values() for i in d.subscriptions]))
                  .values(active=False))


@dataclass
class Seen:
    who: str
    method: str
    path: str
    status: int
    text: str
    expect: set[int] | None  # None: anything but 401, 403 and 5xx
    exempt: bool = False  # the department's own household lookup: it typed the ID number


@pytest.fixture(scope="module")
def matrix(api, app, world) -> list[Seen]:
    """Every department against every object of the other, every role against every route not for it, and the
    answers each role is entitled to; each answer kept for the checks on personal data."""
    seen: list[Seen] = []

    def go(who, token, method, path, expect, exempt=False, **kw):
        resp = _send(api, method, path, token, **kw)
        seen.append(Seen(who, method, path, resp.status_code, resp.text, expect, exempt))
        return resp

    a, b = world["A"], world["B"]
    for me, other, who in ((a, b, "A"), (b, a, "B")):
        t = me.token
        go(who, t, "GET", f"/v1/requests/{other.request_id}", {404})
        for purpose in PURPOSES:
            go(who, t, "GET", f"/v1/households/{other.household}/record", {404}, params={"purpose": purpose})
            go(who, t, "GET", f"/v1/households/{other.household}/assistance", {404}, params={"purpose": purpose})
        grant = {"programme": "dibao", "granted_from": TODAY}
        go(who, t, "POST", "/v1/assistance", {404}, json={**grant, "household_id": other.household})
        go(who, t, "POST", "/v1/assistance", {404}, json={**grant, "household_id": other.household,
                                                          "request_id": me.request_id})
        go(who, t, "POST", "/v1/assistance", {404}, json={**grant, "household_id": me.household,
                                                          "request_id": other.request_id})
        go(who, t, "GET", "/v1/requests", {403, 404, 422}, params={"before": other.request_id})
        go(who, t, "GET", "/v1/audit/events", {403}, params={"household_id": other.household})
        go(who, t, "GET", f"/v1/audit/persons/{keyring().pseudonym(other.members[0]['id_number'])}/timeline", {403})
        go(who, t, "POST", "/v1/audit/person-ref", {403}, json={"id_number": other.members[0]["id_number"]})
        go(who, t, "GET", "/v1/audit/proof/1", {403})
        go(who, t, "POST", f"/v1/clients/{other.client_id}/deactivate", {403})
        # 一证通办 by design: a caseworker holding a person's ID number and signed form gets the household
        go(who, t, "POST", "/v1/household-lookup", {200}, exempt=True,
           json={"id_number": other.members[0]["id_number"], "purpose": "dibao", "case_ref": "X-1",
                 "signed_form": FORM})
        # and its own objects, as a control
        go(who, t, "GET", f"/v1/requests/{me.request_id}", {200})
        go(who, t, "GET", "/v1/requests", {200})
        go(who, t, "GET", f"/v1/households/{me.household}/record", {200}, params={"purpose": "dibao"})
        go(who, t, "GET", f"/v1/households/{me.household}/assistance", {200}, params={"purpose": "dibao"})
        go(who, t, "POST", "/v1/household-lookup", {200}, exempt=True,
           json={"id_number": me.members[0]["id_number"], "purpose": "dibao", "case_ref": "X-1", "signed_form": FORM})
        # its own household under any purpose it was not authorized for: purpose switching of any kind
        for purpose in set(PURPOSES) - {"dibao"}:
            go(who, t, "GET", f"/v1/households/{me.household}/record", {404}, params={"purpose": purpose})
            go(who, t, "GET", f"/v1/households/{me.household}/assistance", {404}, params={"purpose": purpose})
            go(who, t, "POST", "/v1/assistance", {404}, json={**grant, "programme": purpose,
                                                              "household_id": me.household})
    yb = world["YB"]
    go("YB", yb.token, "GET", f"/v1/households/{yb.household}/record", {200}, params={"purpose": "medical"})
    go("YB", yb.token, "GET", f"/v1/households/{a.household}/record", {404}, params={"purpose": "medical"})
    go("YB", yb.token, "GET", f"/v1/households/{yb.household}/record", {404}, params={"purpose": "dibao"})
    go("YB", yb.token, "POST", "/v1/assistance", {404}, json={"programme": "dibao", "granted_from": TODAY,
                                                              "household_id": yb.household})
    go("YB", yb.token, "POST", "/v1/assistance", {404}, json={"programme": "dibao", "granted_from": TODAY,
                                                              "household_id": yb.household,
                                                              "request_id": yb.request_id})
    go("YB", yb.token, "GET", f"/v1/households/{yb.household}/record", {404}, params={"purpose": "dibao"})

    # every role against every route: 403 where the route is for another role
    tokens = {"department": a.token, "auditor": world["auditor"], "staff": world["staff"], "admin": world["admin"]}
    for method, path, route in _v1_routes(app):
        role = _role_of(route)
        for name, token in tokens.items():
            go(name, token, method, path, None if role in (None, name) else {403})
    # other roles on the departments' own objects
    for name in ("auditor", "staff", "admin"):
        go(name, tokens[name], "GET", f"/v1/requests/{a.request_id}", {403})
        go(name, tokens[name], "GET", f"/v1/households/{a.household}/record", {403}, params={"purpose": "dibao"})
        go(name, tokens[name], "GET", f"/v1/households/{a.household}/assistance", {403}, params={"purpose": "dibao"})
    # what the auditor, staff and admin are entitled to, about these households
    aud = world["auditor"]
    go("auditor", aud, "GET", "/v1/audit/events", {200}, params={"household_id": a.household, "limit": 500})
    ref = go("auditor", aud, "POST", "/v1/audit/person-ref", {200}, json={"id_number": a.members[0]["id_number"]})
    go("auditor", aud, "GET", f"/v1/audit/persons/{ref.json()['person_ref']}/timeline", {200})
    go("auditor", aud, "GET", "/v1/audit/unusual-reads", {200})
    go("staff", world["staff"], "GET", "/v1/quarantine", {200})
    go("staff", world["staff"], "GET", "/v1/validation-runs", {200})
    go("admin", world["admin"], "GET", "/v1/clients", {200}, params={"limit": 500})
    return seen


# -- a. authentication ----------------------------------------------------------------------------------------------
def test_every_v1_route_needs_a_token_and_health_does_not(api, app):
    routes = _v1_routes(app)
    assert len(routes) >= 20
    assert api.get("/health").status_code == 200
    for method, path, _route in routes:
        for token in (None, "hub_forged-token", "not even the format"):
            resp = _send(api, method, path, token)
            assert resp.status_code == 401, f"{method} {path} with {token!r}: {resp.status_code}"
            assert resp.headers["www-authenticate"] == "Bearer"


def test_every_v1_route_depends_on_the_bearer_token_and_declares_it(app):
    def needs_token(dependant) -> bool:
        # current_client, or a route's own admission of its bearer (hub.web.deps.bearer_of), both marked
        return any(getattr(d.call, "authenticates", False) or needs_token(d) for d in dependant.dependencies)

    assert current_client.authenticates
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith(("/v1", "/dci/")):
            assert needs_token(route.dependant), f"{route.path} does not authenticate (hub.web.deps)"
            _role_of(route)  # and its role is known here
    spec = app.openapi()
    for path, operations in spec["paths"].items():
        if path.startswith(("/v1", "/dci/")):
            for method, op in operations.items():
                assert op.get("security") == [{"HTTPBearer": []}], f"{method.upper()} {path} declares no bearer token"
                assert {"401", "403", "422", "429"} <= set(op["responses"]), f"{method.upper()} {path}"


def test_a_wrong_method_names_every_method_of_the_path(api, world):
    resp = api.put("/v1/requests", headers=_auth(world["A"].token))
    assert resp.status_code == 405 and resp.headers["allow"] == "GET, POST"


# -- b. object-level authorization and roles --------------------------------------------------------------------------
def test_no_department_reaches_another_departments_objects_and_no_role_another_roles_routes(matrix):
    wrong = [f"{s.who} {s.method} {s.path}: {s.status} (expected {sorted(s.expect)})" for s in matrix
             if s.expect is not None and s.status not in s.expect]
    wrong += [f"{s.who} {s.method} {s.path}: {s.status}" for s in matrix
              if s.expect is None and (s.status in (401, 403) or s.status >= 500)]
    assert not wrong, "\n".join(wrong)
    assert sum(s.status == 403 for s in matrix) >= 40


def test_a_departments_lists_hold_only_its_own(api, world, matrix):
    a, b = world["A"], world["B"]
    for me, other in ((a, b), (b, a)):
        listed = api.get("/v1/requests", params={"limit": 500}, headers=_auth(me.token)).json()["items"]
        assert me.request_id in {r["id"] for r in listed} and other.request_id not in {r["id"] for r in listed}
        assert {r["household_id"] for r in listed} & {other.household} == set()
        grants = api.get(f"/v1/households/{me.household}/assistance", params={"purpose": "dibao"},
                         headers=_auth(me.token)).json()["grants"]
        assert [(g["id"], g["department"]) for g in grants] == [(me.grant_id, me.code)]  # none made by the other


def _read(api, token, hh, purpose="dibao"):
    return api.get(f"/v1/households/{hh}/record", params={"purpose": purpose}, headers=_auth(token)).status_code


def _grant(api, token, hh, programme="dibao", **more):
    return api.post("/v1/assistance", json={"household_id": hh, "programme": programme, "granted_from": TODAY, **more},
                    headers=_auth(token))


def test_an_expired_authorization_closes_every_read_it_opened_and_a_grant_keeps_none_open(api, city):
    client, token = create_client("caseworker A (expiry)", "department", A)
    created = api.post("/v1/requests", json=sample(29), headers=_auth(token)).json()
    hh = run_inline(created["id"]).household_ref
    assert _read(api, token, hh) == 200
    assert _ledger("record.read", client_id=client.id)[-1]["basis"] == f"request:{created['id']}"
    assert _grant(api, token, hh).status_code == 201  # reported while the authorization holds

    with valid_until(created["id"], utcnow() - dt.timedelta(minutes=1)):
        # the grant reported while the case was open keeps nothing open: the authorization has ended
        assert _read(api, token, hh) == 404
        denied = _ledger("record.read_denied", client_id=client.id)
        assert len(denied) == 1 and denied[0]["household_ref"] == hh and denied[0]["why"] == "no_open_case"
        assert api.get(f"/v1/households/{hh}/assistance", params={"purpose": "dibao"},
                       headers=_auth(token)).status_code == 404
        # with no open case, the department cannot grant itself a way back
        assert _grant(api, token, hh).status_code == 404
        assert _read(api, token, hh) == 404
    assert _read(api, token, hh) == 200  # the same authorization, valid again


def test_a_revoked_authorization_closes_every_read_it_opened_at_once(api, city):
    client, token = create_client("caseworker A (revocation)", "department", A)
    created = api.post("/v1/requests", json=sample(28), headers=_auth(token)).json()
    hh = run_inline(created["id"]).household_ref
    assert _grant(api, token, hh, request_id=created["id"]).status_code == 201
    assert _read(api, token, hh) == 200
    with session() as s:
        auth_id = s.scalars(select(Authorization.id).where(Authorization.request_id == created["id"])).one()
        revoke(s, auth_id)
    assert _read(api, token, hh) == 404
    assert api.get(f"/v1/households/{hh}/assistance", params={"purpose": "dibao"},
                   headers=_auth(token)).status_code == 404
    assert _grant(api, token, hh).status_code == 404  # and no grant reopens it
    assert _read(api, token, hh) == 404
    assert [d["why"] for d in _ledger("record.read_denied", client_id=client.id)] == ["no_open_case"] * 4


def test_a_purpose_limited_authorization_opens_no_other_purpose_of_any_kind(api, city):
    """A department authorized for medical aid only cannot report a dibao grant and then read the dibao record
    (the switch the issue found), nor switch purposes any other way; each attempt is a refused read in the ledger."""
    client, token = create_client("medical security (purpose switch)", "department", YB)
    created = api.post("/v1/requests", json=sample(27, purpose="medical", department=YB), headers=_auth(token)).json()
    hh = run_inline(created["id"]).household_ref
    assert _read(api, token, hh, "medical") == 200
    for programme in ("dibao", "low_income", "tekun", "temporary"):
        assert _grant(api, token, hh, programme).status_code == 404
        assert _grant(api, token, hh, programme, request_id=created["id"]).status_code == 404
        assert _read(api, token, hh, programme) == 404
        assert api.get(f"/v1/households/{hh}/assistance", params={"purpose": programme},
                       headers=_auth(token)).status_code == 404
    denied = _ledger("record.read_denied", client_id=client.id)
    assert len(denied) == 16 and {d["household_ref"] for d in denied} == {hh}
    assert sum(d.get("what") == "assistance.report" for d in denied) == 8
    with session() as s:
        assert not s.scalars(select(AssistanceGrant).where(AssistanceGrant.household_ref == hh)).all()
    # its own purpose, after its only authorization is revoked in full: closed too
    assert _grant(api, token, hh, "medical").status_code == 201
    with session() as s:
        revoke(s, s.scalars(select(Authorization.id).where(Authorization.request_id == created["id"])).one())
    assert _read(api, token, hh, "medical") == 404 and _read(api, token, hh, "dibao") == 404


# -- c. no plaintext ID number, and names only where the policy grants them ------------------------------------------
def test_no_answer_holds_an_id_number_but_the_departments_own_lookup(world, matrix):
    numbers = {m["id_number"] for d in ("A", "B", "YB") for m in world[d].members}
    leaks = [f"{s.who} {s.method} {s.path}" for s in matrix if not s.exempt
             and any(n in s.text or n.lower() in s.text for n in numbers)]
    assert not leaks, leaks
    lookups = [s for s in matrix if s.exempt]
    assert lookups and all(s.status == 200 and any(n in s.text for n in numbers) for s in lookups)


def test_civil_affairs_reads_names_and_medical_security_answers_only(api, world):
    a, yb = world["A"], world["YB"]
    full = api.get(f"/v1/households/{a.household}/record", params={"purpose": "dibao"}, headers=_auth(a.token)).json()
    assert {m["name"] for m in full["content"]["members"]} == {m["name"] for m in a.members}
    assert {m["id_number_masked"] for m in full["content"]["members"]} == {mask_id(m["id_number"]) for m in a.members}

    resp = api.get(f"/v1/households/{yb.household}/record", params={"purpose": "medical"}, headers=_auth(yb.token))
    body = resp.json()
    assert body["policy_rule"] == "medical-security"
    assert set(body["content"]) == {"schema", "household_ref", "purpose", "as_of", "version", "recorded_at", "answers"}
    assert set(body["content"]["answers"]) == {"dibao", "low_income", "tekun"}
    for m in yb.members:
        assert m["name"] not in resp.text and mask_id(m["id_number"]) not in resp.text
        assert keyring().pseudonym(m["id_number"]) not in resp.text
    assert body["fields"] == ["answers.dibao", "answers.low_income", "answers.tekun"]


# -- d. the policy, the signature of the cut, the ledger's account of a read -----------------------------------------
RULE = """
[[rule]]
name = "{name}"
departments = {departments}
purposes = {purposes}
{what}
"""


def _policy(name="r1", departments='["MZ-*"]', purposes='["dibao"]', what='fields = ["members"]', extra=""):
    return RULE.format(name=name, departments=departments, purposes=purposes, what=what) + extra


@pytest.mark.parametrize("text, message", [
    (_policy(what='fields = ["members", "salary"]'), "r1: unknown fields ['salary']"),
    (_policy(what='fields = ["facts.lottery"]'), "r1: unknown fields ['facts.lottery']"),
    (_policy(purposes='["dibao", "holiday"]'), "r1: purposes"),
    (_policy(what='answers = ["dibao", "pension"]'), "r1: answers: programmes among"),
    (_policy(what='fields = ["members"]\nanswers = ["dibao"]'), "r1: give either fields or answers"),
    (_policy(what=""), "r1: give either fields or answers"),
    (_policy() + _policy(), "r1: the name is used twice"),
    (_policy(what='fields = ["members"]\ncolour = "red"'), "r1: unknown keys ['colour']"),
    (_policy(departments="[]"), "r1: departments"),
    (_policy(departments='"MZ-*"'), "r1: departments: a list of strings"),  # not each letter a pattern
    (_policy(what='fields = "members"'), "r1: fields: a list of strings"),
    ("[rule]\nname = 'x'", "rules are [[rule]] tables"),
    ("", "the policy has no [[rule]]"),
    ("[[rule", "not valid TOML"),
])
def test_a_malformed_policy_is_refused_naming_the_rule(text, message):
    with pytest.raises(PolicyError) as err:
        parse(text)
    assert message in str(err.value)


def test_the_shipped_policy_parses_and_grants_by_department_and_purpose():
    assert rule_for("MZ-210302", "dibao").name == "civil-affairs-assistance"
    assert rule_for("MZ-210304", "medical").name == "civil-affairs-special"
    assert rule_for("YB-210303", "medical").returns == ["answers.dibao", "answers.low_income", "answers.tekun"]
    assert rule_for("YB-210303", "dibao") is None and rule_for("XX-1", "dibao") is None


def test_cut_returns_exactly_the_granted_parts():
    identity = {k: f"<{k}>" for k in IDENTITY}
    content = {**identity, "request_id": "r", "division": {"county": "210302"}, "members": [{"name": "张三"}],
               "facts": {"income": [1], "properties": [2], "deposits": [3]},
               "assessment": {"income": 10, "assets": 20, "screening": {"dibao": {"answer": "yes", "why": "x"},
                                                                         "low_income": {"answer": "no"}}},
               "discrepancies": [], "sources": {}, "authority": {}}
    fields = Rule("f", "", ("MZ-*",), ("dibao",), fields=("division", "facts.properties", "assessment.income"))
    assert cut(content, fields) == {**identity, "division": {"county": "210302"}, "facts": {"properties": [2]},
                                    "assessment": {"income": 10}}
    answers = Rule("a", "", ("YB-*",), ("medical",), answers=("dibao", "tekun"))
    assert cut(content, answers) == {**identity, "answers": {"dibao": "yes", "tekun": None}}
    assert content["facts"] == {"income": [1], "properties": [2], "deposits": [3]}  # the record is not touched


def test_the_signature_covers_the_cut_and_the_ledger_names_what_was_returned(api, world):
    a = world["A"]
    resp = api.get(f"/v1/households/{a.household}/record", params={"purpose": "dibao"}, headers=_auth(a.token))
    body = resp.json()
    assert verify_record(body["content"], body["signature"])
    changed = {**body["content"], "members": [{**body["content"]["members"][0], "name": "李四"},
                                              *body["content"]["members"][1:]]}
    assert not verify_record(changed, body["signature"])
    assert not verify_record({**body["content"], "version": body["content"]["version"] + 1}, body["signature"])
    read = _ledger("record.read", client_id=a.client_id, household_ref=a.household)[-1]
    assert read["fields"] == body["fields"] and read["policy_rule"] == body["policy_rule"] == "civil-affairs-assistance"
    assert read["basis"] == f"request:{a.request_id}" and read["version"] == body["version"]
    assert set(body["fields"]) == set(body["content"]) - set(IDENTITY)


# -- e. rate limits ---------------------------------------------------------------------------------------------------
def _until_429(api, token, tries=12):
    for i in range(tries):
        resp = api.get("/v1/policy", headers=_auth(token))
        if resp.status_code == 429:
            return i, resp
    raise AssertionError(f"no 429 within {tries} calls")


def test_a_client_over_its_rate_waits_and_others_do_not(api, monkeypatch):
    # the app's own limiter, for this test (monkeypatch.setattr on a State would delete it on undo)
    monkeypatch.setitem(api.app.state._state, "limiter", Limiter(Limit.parse("2/3")))
    _, hasty = create_client("hasty", "department", "MZ-210311")
    _, calm = create_client("calm", "department", "MZ-210321")
    calls, resp = _until_429(api, hasty)
    assert calls >= 3  # the burst
    assert int(resp.headers["retry-after"]) >= 1 and resp.json()["error"] == {
        "code": "rate_limited", "message": "too many requests: slow down", "field": None}
    assert api.get("/v1/policy", headers=_auth(calm)).status_code == 200

    calls, resp = _until_429(api, "hub_guessed-token")  # guessing tokens costs the address its budget
    assert calls >= 3 and int(resp.headers["retry-after"]) >= 1
    assert api.get("/v1/policy", headers=_auth(calm)).status_code == 200  # a valid token is not the address's


def test_the_limiter_refills_with_time():
    now = [100.0]
    lim = Limiter(Limit.parse("2/3"), clock=lambda: now[0])
    assert [lim.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert lim.take("k") == pytest.approx(0.5) and lim.take("other") == 0.0
    now[0] += 0.25
    assert lim.take("k") == pytest.approx(0.25)  # half a token back: a quarter second for the other half
    now[0] += 0.25
    assert lim.take("k") == 0.0
    now[0] += 60
    assert [lim.take("k") for _ in range(4)][-1] > 0  # refilled up to the burst, not beyond
    assert Limiter(Limit.parse("0")).take("k") == 0.0
    for bad in ("fast", "-1/5", "2/0", "nan/3", "inf"):
        with pytest.raises(ValueError):
            Limit.parse(bad)


# -- f. pagination ---------------------------------------------------------------------------------------------------
def _walk(api, url, token, **params) -> list[dict]:
    seen, before = [], None
    for _ in range(1000):
        page = api.get(url, params={**params, "limit": 2, **({"before": before} if before else {})},
                       headers=_auth(token))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        seen += body["items"]
        before = body["next_before"]
        if before is None:
            return seen
    raise AssertionError("pagination does not end")


def test_pages_hold_every_item_exactly_once(api, world):
    client, token = create_client("caseworker (pages)", "department", "MZ-210381")
    made = [api.post("/v1/requests", json=sample(k), headers=_auth(token)).json()["id"] for k in (1, 2, 7, 23, 29)]
    listed = _walk(api, "/v1/requests", token)
    assert sorted(r["id"] for r in listed) == sorted(made)  # each once
    assert [r["created_at"] for r in listed] == sorted((r["created_at"] for r in listed), reverse=True)

    for _ in range(5):  # five refused reads: ledger entries naming this client
        api.get(f"/v1/households/{world['A'].household}/record", params={"purpose": "dibao"}, headers=_auth(token))
    entries = [e["seq"] for e in _walk(api, "/v1/audit/events", world["auditor"], client_id=client.id)]
    with session() as s:
        expected = [e.seq for e in s.scalars(select(LedgerEvent).order_by(LedgerEvent.seq.desc()))
                    if e.payload.get("client_id") == client.id]
    assert entries == expected and len(entries) >= 5

    ids = [c["id"] for c in _walk(api, "/v1/clients", world["admin"])]
    with session() as s:
        every = set(s.scalars(select(ApiClient.id)))
    assert len(ids) == len(set(ids)) and set(ids) == every


# -- g. admin ---------------------------------------------------------------------------------------------------------
def test_an_admin_creates_and_deactivates_clients(api, world):
    admin = world["admin"]
    made = api.post("/v1/clients", json={"name": "new caseworker", "role": "department", "department": "MZ-210323"},
                    headers=_auth(admin))
    assert made.status_code == 201 and made.json()["active"] and made.json()["department"] == "MZ-210323"
    new_id, new_token = made.json()["id"], made.json()["token"]
    assert api.get("/v1/requests", headers=_auth(new_token)).status_code == 200
    with session() as s:
        admin_id = s.scalars(select(ApiClient.id).where(ApiClient.name == "admin (access tests)")).one()
    assert _ledger("client.created", client_id=new_id)[0]["by"] == admin_id

    gone = api.post(f"/v1/clients/{new_id}/deactivate", headers=_auth(admin))
    assert gone.status_code == 200 and gone.json()["active"] is False
    assert api.get("/v1/requests", headers=_auth(new_token)).status_code == 401
    assert _ledger("client.deactivated", client_id=new_id)[0]["by"] == admin_id
    assert api.post(f"/v1/clients/{new_id}/deactivate", headers=_auth(admin)).status_code == 404
    assert api.post(f"/v1/clients/{admin_id}/deactivate", headers=_auth(admin)).status_code == 422
    assert api.get("/v1/clients", headers=_auth(admin)).status_code == 200  # still active
    bad = api.post("/v1/clients", json={"name": "x", "role": "department"}, headers=_auth(admin))
    assert bad.status_code == 422
    for role in ("auditor", "staff"):
        made = api.post("/v1/clients", json={"name": "x", "role": "admin"}, headers=_auth(world[role]))
        assert made.status_code == 403


# -- h. the auditors' routes -----------------------------------------------------------------------------------------
def test_checkpoint_and_inclusion_proofs(api, world):
    from consent import merkle
    from consent.tree import make_checkpoint

    a, auditor = world["A"], world["auditor"]
    api.get(f"/v1/households/{a.household}/record", params={"purpose": "dibao"}, headers=_auth(a.token))
    seq = _ledger("record.read", client_id=a.client_id)[-1]["seq"]
    with session() as s:
        make_checkpoint(s, keyring().signing_key)
    check = api.get("/v1/audit/checkpoint", headers=_auth(auditor)).json()
    assert check["intact"] and check["problems"] == [] and check["entries_after_checkpoint"] == 0
    assert check["state"] == "green"  # every entry under the checkpoint just signed
    assert check["checkpoint"]["size"] == check["events"] and check["latest_seq"] >= seq

    proof = api.get(f"/v1/audit/proof/{seq}", headers=_auth(auditor))
    assert proof.status_code == 200
    p = proof.json()
    leaf = base64.b64decode(p["leaf_hash"])
    assert leaf == merkle.leaf_hash(p["entry"].encode("utf-8")) and p["kind"] == "record.read"
    merkle.verify_inclusion(p["leaf_index"], p["tree_size"], leaf, [base64.b64decode(h) for h in p["proof"]],
                            base64.b64decode(p["root"]))

    api.get(f"/v1/households/{a.household}/record", params={"purpose": "dibao"}, headers=_auth(a.token))
    later = _ledger("record.read", client_id=a.client_id)[-1]["seq"]
    assert api.get(f"/v1/audit/proof/{later}", headers=_auth(auditor)).status_code == 409
    assert api.get(f"/v1/audit/proof/{later + 10**6}", headers=_auth(auditor)).status_code == 404


def test_a_persons_timeline_holds_their_consent_decisions_and_the_reads_of_their_household(api, world):
    a, auditor = world["A"], world["auditor"]
    api.get(f"/v1/households/{a.household}/record", params={"purpose": "dibao"}, headers=_auth(a.token))
    member = a.members[-1]
    ref = api.post("/v1/audit/person-ref", json={"id_number": member["id_number"].lower()}, headers=_auth(auditor))
    assert ref.status_code == 200 and ref.json()["person_ref"] == keyring().pseudonym(member["id_number"])
    resp = api.get(f"/v1/audit/persons/{ref.json()['person_ref']}/timeline", params={"limit": 500},
                   headers=_auth(auditor))
    items = resp.json()["items"]
    assert any(e["kind"] == "consent.allowed" and e["payload"]["person_ref"] == ref.json()["person_ref"] for e in items)
    assert any(e["kind"] == "record.read" and e["payload"]["household_ref"] == a.household
               and e["payload"]["client_id"] == a.client_id for e in items)
    assert [e["seq"] for e in items] == sorted((e["seq"] for e in items), reverse=True)
    assert member["id_number"] not in resp.text and member["name"] not in resp.text
    assert _ledger("audit.read", what="timeline")[-1]["person_ref"] == ref.json()["person_ref"]


def test_unusual_reads_flag_refusals_bulk_and_off_hours(api, world, monkeypatch):
    a, b, auditor = world["A"], world["B"], world["auditor"]
    since = (utcnow() - dt.timedelta(seconds=2)).isoformat()
    assert api.get(f"/v1/households/{a.household}/record", params={"purpose": "dibao"},
                   headers=_auth(b.token)).status_code == 404
    for _ in range(4):
        api.get(f"/v1/households/{a.household}/record", params={"purpose": "dibao"}, headers=_auth(a.token))
    monkeypatch.setattr(audit, "BULK_PER_HOUR", 2)
    monkeypatch.setattr(audit, "OFFICE_HOURS", (0, 0))  # now is outside
    items = api.get("/v1/audit/unusual-reads", params={"since": since}, headers=_auth(auditor)).json()["items"]
    kinds = {(u["kind"], u["client_id"]) for u in items}
    assert ("no_open_case", b.client_id) in kinds
    assert ("bulk", a.client_id) in kinds and ("off_hours", a.client_id) in kinds
    refused = next(u for u in items if u["kind"] == "no_open_case" and u["client_id"] == b.client_id)
    assert refused["household_id"] == a.household and refused["department"] == B

    monkeypatch.setattr(audit, "BULK_PER_HOUR", 30)
    monkeypatch.setattr(audit, "OFFICE_HOURS", (0, 24))
    items = api.get("/v1/audit/unusual-reads", params={"since": since}, headers=_auth(auditor)).json()["items"]
    # (refused lookups of another test in the same two seconds are unusual too: the reads' kinds are this test's)
    assert {u["kind"] for u in items if not u["kind"].startswith("lookup_")} == {"no_open_case"}
    assert api.get("/v1/audit/unusual-reads", params={"since": "2026-01-01T00:00:00"},
                   headers=_auth(auditor)).status_code == 422  # no offset
    assert api.get("/v1/audit/unusual-reads", params={"since": "1700000000"},
                   headers=_auth(auditor)).status_code == 422  # not ISO 8601


# -- i. errors say nothing personal ---------------------------------------------------------------------------------
def test_errors_do_not_echo_id_numbers_or_names(api, world, monkeypatch):
    a, auditor = world["A"], world["auditor"]
    person = a.members[0]
    idn, name = person["id_number"], person["name"]
    wrong = idn[:17] + ("0" if idn[17] != "0" else "1")  # a bad check character
    unknown = "11010519491231002X"  # valid, and no agency knows it
    answers = [
        api.post("/v1/audit/person-ref", json={"id_number": wrong}, headers=_auth(auditor)),
        api.post("/v1/household-lookup", json={"id_number": wrong, "purpose": "dibao", "case_ref": "X-1",
                                               "signed_form": FORM}, headers=_auth(a.token)),
        api.post("/v1/household-lookup", json={"id_number": idn, "purpose": "dibao", "evidence_sha256": name},
                 headers=_auth(a.token)),
        api.post("/v1/household-lookup", json={"id_number": idn, "purpose": "dibao", "case_ref": "X-1",
                                               "signed_form": {**FORM, "content_base64": name}, "evidence_sha256": name},
                 headers=_auth(a.token)),
        api.post("/v1/household-lookup", json={"id_number": idn, "purpose": "dibao", "case_ref": idn,
                                               "signed_form": FORM}, headers=_auth(a.token)),
        api.post("/v1/requests", json={**sample(1), "purpose": "lottery"}, headers=_auth(a.token)),
        api.post("/v1/requests", json={**sample(1), "members": [{**person, "relation": ["head"]}]},
                 headers=_auth(a.token)),
        api.post("/v1/requests", json=sample(1), headers=_auth(auditor)),
        api.get(f"/v1/households/{idn}/record", params={"purpose": "dibao"}, headers=_auth(a.token)),
        api.get(f"/v1/requests/{idn}", headers=_auth(a.token)),
        api.post("/v1/assistance", json={"household_id": idn, "programme": "dibao", "granted_from": TODAY},
                 headers=_auth(a.token)),
        api.post("/v1/clients", json={"name": name, "role": "department", "department": idn.lower()},
                 headers=_auth(world["admin"])),
        api.post("/v1/subscriptions", json={"url": f"https://{idn}:{name}@example.org/"}, headers=_auth(a.token)),
    ]
    with_agencies = api.post("/v1/household-lookup", json={"id_number": unknown, "purpose": "dibao",
                                                          "case_ref": "X-1", "signed_form": FORM},
                             headers=_auth(a.token))
    monkeypatch.setenv("HUB_AGENCIES_URL", "http://127.0.0.1:9/")  # the agencies are down
    down = api.post("/v1/household-lookup", json={"id_number": idn, "purpose": "dibao", "case_ref": "X-1",
                                                  "signed_form": FORM}, headers=_auth(a.token))
    assert down.status_code == 503 and down.headers["retry-after"] == "30"
    assert with_agencies.status_code == 404
    answers += [with_agencies, down]
    assert {r.status_code for r in answers} <= {403, 404, 422, 503}
    for r in answers:
        for secret in (idn, idn.lower(), wrong, unknown, name):
            assert secret not in r.text, (r.request.method, r.request.url.path, r.text)
