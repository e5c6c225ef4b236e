"""The DCI Social Registry API (hub/dci) as a federated platform meets it: every operation of the spec, each request
and response validated against ../shared/dci/social_api_v1.0.0.yaml; the signature, authorization and
malformed-envelope refusals with the spec's codes (never a 500); what a platform may reach (only persons whose
consent it carries) and see (the federation rule, cut to those persons, pseudonyms re-keyed); the ledger's account
of every exchange. The hub under test is this session's (SQLite), with the simulated agencies; the platform is
played by the test, and its callback endpoints by a loopback server."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select

from consent.authorizations import adult_from
from hub.web.app import create_app
from hub.services.clients import create_client
from core.crypto import keyring
from hub.federation import client as dci_client
from connectors import envelope as env
from hub.dci import outbox
from hub.stages.intake import create_request
from hub.stages.pipeline import run_inline
from core.store import (AssistanceGrant, Authorization, DciTransaction, HouseholdRecord, Request, session,
                        utcnow)
from hub.rules.standards import rules_at
from hub.stages.records import decrypt_content
from hub.stages.review import run_review, screening
from schemas.vocabulary import NO, YES
from tests.support.households import sample
from tests.support.servers import rate_limits_off, serve_agencies as _serve
from tests.support.store import ledger_entries as _ledger, valid_until
from tests.support.dci import Callbacks, Remote, check_request, check_response, peers_file, spec_paths

R, PROVINCE, OTHER_CITY = "HUB-210200", "FED-210000", "HUB-210400"
DEPARTMENT = "MZ-210302"
HOME = 12  # the household this hub has published: head, spouse, son, two daughters (one a minor)
SOURCES = ("household", "tax", "social_insurance")


def _sha(*parts) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def _adult(member: dict) -> bool:
    return adult_from(member["id_number"]) <= dt.date.today() - dt.timedelta(days=2)


# -- the world: this hub with a published household, a platform with its token and key, its callbacks ------------
@pytest.fixture(scope="module", autouse=True)
def _no_rate_limit():
    yield from rate_limits_off("HUB_AIRFLOW_URL")


@pytest.fixture(scope="module")
def city():
    yield from _serve("none")


@pytest.fixture(scope="module")
def callbacks():
    cb = Callbacks()
    yield cb
    cb.stop()


@pytest.fixture(scope="module")
def remote(callbacks, tmp_path_factory):
    """Dalian's and Fushun's hubs (peers with callback addresses) and the province's platform (none registered)."""
    r, province, other = Remote(R), Remote(PROVINCE), Remote(OTHER_CITY)
    for p, name in ((r, "大连市社会救助核对平台"), (province, "辽宁省核对平台"), (other, "抚顺市社会救助核对平台")):
        client, p.token = create_client(name, "federation", p.platform, public_key=p.public_key)
        p.client_id = client.id
    peers = peers_file(tmp_path_factory.mktemp("dci") / "peers.json",
                       {"id": R, "name": "大连", "url": callbacks.url, "token": "token-issued-by-dalian",
                        "public_key": r.public_key},
                       {"id": OTHER_CITY, "name": "抚顺", "url": callbacks.url, "token": "token-issued-by-fushun",
                        "public_key": other.public_key})
    mp = pytest.MonkeyPatch()
    mp.setenv("HUB_DCI_PEERS", str(peers))
    yield {"r": r, "province": province, "other": other}
    mp.undo()


@pytest.fixture(scope="module")
def api():
    return TestClient(create_app())


@pytest.fixture(scope="module")
def home(city):
    """Household HOME as this hub published it for a civil-affairs department."""
    doc = sample(HOME, sources=SOURCES, department=DEPARTMENT)
    request_id = create_request(doc, department=DEPARTMENT)
    result = run_inline(request_id)
    assert result.status == "published"
    adults = [m for m in doc["members"] if _adult(m)]
    minors = [m for m in doc["members"] if not _adult(m)]
    assert len(adults) >= 2 and minors
    return {"doc": doc, "request_id": request_id, "household": result.household_ref, "adults": adults,
            "minors": minors}


def authorization(*members, sources=("remote_registry",), days: int = 30, start: dt.datetime | None = None,
                  guardian: dict | None = None) -> dict:
    """An authorization document as a platform holds it: each adult signs; a minor is covered by ``guardian``."""
    start = start or dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    consents = []
    for m in members:
        entry = {"id_number": m["id_number"], "sources": list(sources)}
        if _adult(m):
            entry["evidence_sha256"] = _sha("form", m["id_number"])
        else:
            entry["guardian_id_number"] = guardian["id_number"]
        consents.append(entry)
    if guardian is not None and guardian not in members:
        consents.append({"id_number": guardian["id_number"], "sources": list(sources),
                         "evidence_sha256": _sha("form", guardian["id_number"])})
    return {"valid_from": start.isoformat(), "valid_until": (start + dt.timedelta(days=days)).isoformat(),
            "recheck_interval_days": 90, "data_life_days": 30, "consents": consents}


def criteria(query_type: str, query, doc: dict | None, *, purpose: str = "dibao", case: str = "DL-2026-001",
             **extra) -> dict:
    out = {"version": "1.0.0", "reg_type": env.REG_TYPE, "query_type": query_type, "query": query,
           "authorize": {"@type": "Authorize", "ts": env.timestamp(), "purpose": {"code": purpose},
                         "case_ref": case}, **extra}
    if doc is not None:
        out["consent"] = {"@type": "Consent", "ts": env.timestamp(), "purpose": {"code": purpose},
                          "authorization": doc}
    return out


def by_id(member: dict) -> dict:
    return {"type": "NationalID", "value": member["id_number"]}


def message(*crits, key: str = "search_request", field: str = "search_criteria") -> dict:
    return {"transaction_id": env.new_id(), key: [
        {"reference_id": env.new_id(), "timestamp": env.timestamp(), field: c} for c in crits]}


def post(api, who: Remote, path: str, msg, *, header: dict | None = None, action: str | None = None,
         validate: bool = True, body=None, callback_header: bool = False, **over):
    """POST a signed envelope to /dci``path``; the request and the answer checked against the spec."""
    if body is None:
        if header is None:
            action = action or {"/registry/sync/search": "search", "/registry/search": "search",
                                "/registry/subscribe": "subscribe", "/registry/unsubscribe": "unsubscribe",
                                "/registry/txn/status": "txn-status", "/registry/sync/txn/status": "txn-status"}[path]
            count = len(msg.get("search_request") or msg.get("subscribe_request") or [1]) if isinstance(msg, dict) \
                else 1
            header = who.header(action, total_count=count, callback=callback_header, **over)
        body = who.envelope(header, msg)
        if validate:
            check_request(path, body)
    resp = api.post("/dci" + path, headers=who.auth(), **({"content": body} if isinstance(body, (bytes, str))
                                                          else {"json": body}))
    assert resp.status_code < 500, resp.text
    check_response(path, resp.status_code, resp.json())
    return resp


def verified(resp) -> tuple[dict, dict]:
    """(header, message) of a signed answer of this hub, its signature checked with the hub's key."""
    body = resp.json()
    env.verify(body["header"], body.get("message"), body["signature"], keyring().public_key,
               body["header"]["sender_id"])
    assert body["header"]["sender_id"] == "HUB-210300"
    return body["header"], body.get("message")


def items(resp) -> list[dict]:
    return verified(resp)[1]["search_response"]


# -- routes and authentication ---------------------------------------------------------------------------------------
def test_every_path_of_the_spec_is_served_under_dci_and_needs_a_federation_token(api, remote, home):
    served = {r.path[len("/dci"):] for r in api.app.routes if getattr(r, "path", "").startswith("/dci/registry/")}
    assert served == set(spec_paths())
    _, department = create_client("caseworker (dci)", "department", DEPARTMENT)
    for path in spec_paths():
        for token, status, code in ((None, 401, "err.request.unauthorized"),
                                    ("hub_forged", 401, "err.request.unauthorized"),
                                    (department, 403, "err.request.forbidden")):
            resp = api.post("/dci" + path, json={}, headers={"Authorization": f"Bearer {token}"} if token else {})
            assert resp.status_code == status, (path, token, resp.text)
            check_response(path, status, resp.json())
            assert resp.json()["errors"][0]["code"] == code
    spec = api.app.openapi()
    for path in spec_paths():
        op = spec["paths"]["/dci" + path]["post"]
        assert op["security"] == [{"HTTPBearer": []}] and {"200", "400", "401", "403", "429"} <= set(op["responses"])


# -- search: synchronous, by identifier -------------------------------------------------------------------------------
def test_a_sync_search_by_identifier_answers_the_member_cut_to_the_federation_rule(api, remote, home):
    r = remote["r"]
    head, spouse = home["adults"][:2]
    resp = post(api, r, "/registry/sync/search", message(criteria("idtype-value", by_id(spouse),
                                                                  authorization(spouse))))
    header, answer = verified(resp)
    assert resp.status_code == 200 and header["action"] == "on-search" and header["status"] == "succ"
    assert header["receiver_id"] == R and header["total_count"] == header["completed_count"] == 1
    (item,) = answer["search_response"]
    assert item["status"] == "succ" and item["pagination"]["total_count"] == 1
    (record,) = item["data"]["reg_records"]
    assert record["@type"] == "Member" and item["data"]["reg_record_type"] == "Member"
    ids = {i["identifier_type"]: i["identifier_value"] for i in record["member_identifier"]}
    own_ref = keyring().pseudonym(spouse["id_number"])
    assert ids["NationalID"] == spouse["id_number"]  # the one the platform supplied
    assert ids["PlatformPseudonym"] == keyring().scoped(own_ref, f"platform:{R}") != own_ref
    assert record["registration_status"] == "normal" and record["demographic_info"]["name"]["name"] == spouse["name"]
    hub_record = record["hub_record"]
    assert set(hub_record) <= {"schema", "household_ref", "purpose", "as_of", "version", "recorded_at", "division",
                               "members", "facts", "assessment"}
    assert set(hub_record["facts"]) == {"income"} and set(hub_record["assessment"]) <= {
        "members_counted", "income", "screening"}
    assert [m["person_ref"] for m in hub_record["members"]] == [ids["PlatformPseudonym"]]
    assert all(f["person_ref"] == ids["PlatformPseudonym"] for f in hub_record["facts"]["income"])
    assert hub_record["household_ref"] == keyring().scoped(home["household"], f"platform:{R}")
    assert record["registry_record"]["registry"] == "HUB-210300"
    # nobody else of the household: no other ID number, name or pseudonym
    for m in home["doc"]["members"]:
        if m is not spouse:
            assert m["id_number"] not in resp.text and m["name"] not in resp.text
            assert keyring().pseudonym(m["id_number"]) not in resp.text
    assert home["household"] not in resp.text
    # the ledger: the platform's entrustment and authorization, the gate's decision, the search, the read
    # (the request this search made, or reused when another test searched first under the same case)
    search = _ledger("dci.search", client_id=r.client_id, transaction_id=answer["transaction_id"])[-1]
    request = search["request_id"]
    assert _ledger("entrustment.received", request_id=request, department=R, kind="federated")
    assert _ledger("authorization.granted", request_id=request, members=[own_ref])
    assert _ledger("consent.allowed", request_id=request, person_ref=own_ref, source="remote_registry")
    assert search["status"] == "succ" and search["persons"] == [own_ref] and search["mode"] == "sync"
    assert search["policy_rule"] == "federation" and search["transaction_id"] == answer["transaction_id"]
    read = _ledger("record.read", department=R, household_ref=home["household"])[-1]
    assert read["basis"] == f"request:{request}" and read["via"] == "dci"
    for entry in (search, read):
        assert spouse["id_number"] not in json.dumps(entry, ensure_ascii=False)


def test_the_same_case_and_consent_reuse_the_platforms_request(api, remote, home):
    r = remote["r"]
    head = home["adults"][0]
    doc = authorization(head)
    for _ in range(2):
        post(api, r, "/registry/sync/search", message(criteria("idtype-value", by_id(head), doc, case="DL-REUSE")))
    with session() as s:
        reqs = s.scalars(select(Request).where(Request.department == R, Request.case_ref == "DL-REUSE")).all()
        assert len(reqs) == 1 and reqs[0].kind == "federated"
        assert len(s.scalars(select(Authorization).where(Authorization.request_id == reqs[0].id)).all()) == 1
    # another consent (a new signed form) for the same case is another authorization of the same request
    post(api, r, "/registry/sync/search", message(criteria("idtype-value", by_id(head),
                                                           authorization(head, days=60), case="DL-REUSE")))
    with session() as s:
        assert len(s.scalars(select(Authorization).where(Authorization.request_id == reqs[0].id)).all()) == 2


def test_a_minor_is_searched_with_the_guardians_cover(api, remote, home):
    r, minor, guardian = remote["r"], home["minors"][0], home["adults"][0]
    resp = post(api, r, "/registry/sync/search", message(criteria(
        "idtype-value", by_id(minor), authorization(minor, guardian=guardian))))
    (item,) = items(resp)
    assert item["status"] == "succ" and len(item["data"]["reg_records"]) == 1
    assert guardian["name"] not in resp.text  # the guardian's consent covers, and is not searched
    bare = post(api, r, "/registry/sync/search", message(criteria(
        "idtype-value", by_id(minor), {**authorization(guardian), "consents": [
            {"id_number": minor["id_number"], "sources": ["remote_registry"]}]})))
    (refused,) = items(bare)
    assert refused["status"] == "rjct" and "err.request.unauthorized" in refused["status_reason_message"]


# -- search by demographics (predicate) and by expression ----------------------------------------------------------
def test_a_search_by_demographics_selects_among_the_consents_persons(api, remote, home):
    r = remote["r"]
    head, spouse = home["adults"][:2]
    with session() as s:
        from hub.stages.records import load_record

        _, content = load_record(home["household"], s=s)
    born = {m["person_ref"]: m["birth_date"] for m in content["members"]}[keyring().pseudonym(spouse["id_number"])]
    doc = authorization(head, spouse)
    pred = [{"seq_num": 1, "expression1": {"attribute_name": "name", "operator": "eq",
                                           "attribute_value": spouse["name"]},
             "condition": "and", "expression2": {"attribute_name": "birth_date", "operator": "eq",
                                                 "attribute_value": born}}]
    (item,) = items(post(api, r, "/registry/sync/search", message(criteria("predicate", pred, doc))))
    assert item["status"] == "succ"
    assert [rec["registration_status"] for rec in item["data"]["reg_records"]] == ["normal"]
    found = {i["identifier_value"] for i in item["data"]["reg_records"][0]["member_identifier"]}
    assert spouse["id_number"] in found and head["id_number"] not in found
    # nobody matches: an answer with no record
    pred[0]["expression2"]["attribute_value"] = "1900-01-01"
    (none,) = items(post(api, r, "/registry/sync/search", message(criteria("predicate", pred, doc))))
    assert none["status"] == "succ" and none["data"]["reg_records"] == [] and none["pagination"]["total_count"] == 0
    # an attribute outside what the platform may see for that purpose, or an unknown operator: rjct.filter.invalid
    for bad in ({"attribute_name": "deposits", "operator": "gt", "attribute_value": 0.5},  # an integer: oneOf fails
                {"attribute_name": "name", "operator": "like", "attribute_value": "王"},
                {"attribute_name": "age", "operator": "gt", "attribute_value": "forty"}):
        (item,) = items(post(api, r, "/registry/sync/search", message(criteria(
            "predicate", [{"seq_num": 1, "expression1": bad}], doc)), validate=bad["operator"] != "like"))
        assert (item["status"], item["status_reason_code"]) == ("rjct", "rjct.filter.invalid"), bad


def test_a_search_by_expression_over_households_returns_groups_of_the_consents_persons(api, remote, home):
    r = remote["r"]
    head, spouse = home["adults"][:2]
    doc = authorization(head, spouse)
    query = {"type": "ns:org:QueryType:expression", "value": {"expression": {
        "collection": "Group", "query": {"$and": [{"group_size": {"$gte": 1}}, {"dibao": {"$in": ["yes", "no",
                                                                                                  "needs_review"]}}]}}}}
    (item,) = items(post(api, r, "/registry/sync/search", message(criteria("expression", query, doc,
                                                                           response_entity="Group"))))
    assert item["status"] == "succ" and item["data"]["reg_record_type"] == "Group"
    (group,) = item["data"]["reg_records"]
    assert group["@type"] == "Group" and group["group_size"] == len(home["doc"]["members"])
    listed = {i["identifier_value"] for m in group["member_list"] for i in m["member_identifier"]
              if i["identifier_type"] == "NationalID"}
    assert listed == {head["id_number"], spouse["id_number"]}  # the consent's persons only
    assert {m["person_ref"] for m in group["hub_record"]["members"]} == {
        keyring().scoped(keyring().pseudonym(p["id_number"]), f"platform:{R}") for p in (head, spouse)}
    query["value"]["expression"]["query"] = {"group_size": {"$gt": 99}}
    (none,) = items(post(api, r, "/registry/sync/search", message(criteria("expression", query, doc))))
    assert none["status"] == "succ" and none["data"]["reg_records"] == []
    query["value"]["expression"]["query"] = {"$where": "1"}
    (bad,) = items(post(api, r, "/registry/sync/search", message(criteria("expression", query, doc))))
    assert bad["status_reason_code"] == "rjct.filter.invalid"


def test_sort_and_pagination(api, remote, home):
    r = remote["r"]
    adults = home["adults"]
    doc = authorization(*adults)
    pred = [{"seq_num": 1, "expression1": {"attribute_name": "status", "operator": "eq", "attribute_value": "normal"}}]

    def page(n, order="asc"):
        (item,) = items(post(api, r, "/registry/sync/search", message(criteria(
            "predicate", pred, doc, sort=[{"attribute_name": "birth_date", "sort_order": order}],
            pagination={"page_size": 1, "page_number": n}))))
        return item

    first, second = page(1), page(2)
    assert first["pagination"] == {"page_size": 1, "page_number": 1, "total_count": len(adults)}
    births = [p["data"]["reg_records"][0]["demographic_info"]["birth_date"] for p in (first, second)]
    assert births == sorted(births)
    assert page(1, "desc")["data"]["reg_records"][0]["demographic_info"]["birth_date"] == max(
        page(n)["data"]["reg_records"][0]["demographic_info"]["birth_date"] for n in range(1, len(adults) + 1))
    for bad, code in (({"pagination": {"page_size": 0}}, "rjct.pagination.invalid"),
                      ({"pagination": {"page_size": 1000}}, "rjct.pagination.invalid"),
                      ({"sort": [{"attribute_name": "deposits"}]}, "rjct.sort.invalid"),
                      ({"sort": [{"attribute_name": "name", "sort_order": "sideways"}]}, "rjct.sort.invalid")):
        (item,) = items(post(api, r, "/registry/sync/search", message(criteria("predicate", pred, doc, **bad)),
                             validate="sideways" not in json.dumps(bad)))
        assert item["status_reason_code"] == code, bad


# -- search: what a platform may not reach ---------------------------------------------------------------------------
def test_a_search_without_a_basis_is_refused_item_by_item_with_the_specs_codes(api, remote, home):
    r = remote["r"]
    head, spouse = home["adults"][:2]
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=60)
    wrong_check = head["id_number"][:-1] + ("0" if head["id_number"][-1] != "0" else "1")
    cases = {
        "no consent": (criteria("idtype-value", by_id(head), None), "rjct.search_criteria.invalid"),
        "no authorize": ({k: v for k, v in criteria("idtype-value", by_id(head), authorization(head)).items()
                          if k != "authorize"}, "rjct.search_criteria.invalid"),
        "another person's consent": (criteria("idtype-value", by_id(spouse), authorization(head)),
                                     "rjct.search_criteria.invalid"),
        "expired": (criteria("idtype-value", by_id(head), authorization(head, start=past, days=30)),
                    "rjct.search_criteria.invalid"),
        "not consented to remote_registry": (criteria("idtype-value", by_id(head),
                                                      authorization(head, sources=("household", "tax"))),
                                             "rjct.search_criteria.invalid"),
        "a purpose no rule grants": (criteria("idtype-value", by_id(head), authorization(head), purpose="lottery"),
                                     "rjct.search_criteria.invalid"),
        "unknown query type": (criteria("graphql", {"query": "{ members }"}, authorization(head)),
                               "rjct.search_criteria.invalid"),
        "unknown registry type": (criteria("idtype-value", by_id(head), authorization(head),
                                           reg_type="ns:org:RegistryType:CRVS"), "rjct.search_criteria.invalid"),
        "unknown identifier type": (criteria("idtype-value", {"type": "MOBILE", "value": "13800000000"},
                                             authorization(head)), "rjct.filter.invalid"),
        "not an ID number": (criteria("idtype-value", {"type": "NationalID", "value": wrong_check},
                                      authorization(head)), "rjct.filter.invalid"),
        "unknown response entity": (criteria("idtype-value", by_id(head), authorization(head),
                                             response_entity="Household"), "rjct.search_criteria.invalid"),
    }
    for i, (name, (crit, code)) in enumerate(cases.items()):
        if "authorize" in crit:  # a case of its own: no earlier consent of it covers
            crit["authorize"]["case_ref"] = f"DL-NEGATIVE-{i}"
        msg = message(crit)
        valid_per_spec = name not in ("unknown query type", "unknown response entity")
        resp = post(api, r, "/registry/sync/search", msg, validate=valid_per_spec)
        (item,) = items(resp)
        assert resp.status_code == 200 and (item["status"], item["status_reason_code"]) == ("rjct", code), name
        assert "data" not in item and head["name"] not in resp.text and spouse["name"] not in resp.text, name
    with session() as s:  # the platform's requests: its refused decisions are among theirs
        platform_requests = set(s.scalars(select(Request.id).where(Request.department == R)))
    refusals = [e for e in _ledger("consent.refused", source="remote_registry") if e["request_id"] in platform_requests]
    expired = [e for e in refusals if e["reason"] == "EXPIRED"]
    assert expired and expired[-1]["person_ref"] == keyring().pseudonym(head["id_number"])
    assert {"SOURCE_NOT_IN_SCOPE", "EXPIRED"} <= {e["reason"] for e in refusals}
    refused = [e for e in _ledger("dci.search", client_id=r.client_id) if e["status"] == "rjct"]
    assert len(refused) >= len(cases)


def test_reference_ids_timestamps_and_batches(api, remote, home):
    r = remote["r"]
    head = home["adults"][0]
    crit = criteria("idtype-value", by_id(head), authorization(head))
    msg = message(crit, crit)
    msg["search_request"][1]["reference_id"] = msg["search_request"][0]["reference_id"]
    first, second = items(post(api, r, "/registry/sync/search", msg))
    assert first["status"] == "succ" and second["status_reason_code"] == "rjct.reference_id.duplicate"
    msg = message(crit, crit)
    msg["search_request"][0]["timestamp"] = "yesterday"
    msg["search_request"][1]["reference_id"] = "ref with spaces"
    bad_ts, bad_ref = items(post(api, r, "/registry/sync/search", msg, validate=False))
    assert bad_ts["status_reason_code"] == "rjct.timestamp.invalid"
    assert bad_ref["status_reason_code"] == "rjct.reference_id.invalid"
    msg = message(crit)  # a reference id that reads as an ID number is not kept, nor logged
    msg["search_request"][0]["reference_id"] = head["id_number"]
    (item,) = items(post(api, r, "/registry/sync/search", msg))
    assert item["status_reason_code"] == "rjct.reference_id.invalid"


def test_a_revocation_at_this_hub_holds_for_the_platform_from_the_next_search(api, remote, home):
    from consent.authorizations import revoke

    r, head = remote["r"], home["adults"][1]
    doc = authorization(head)
    crit = criteria("idtype-value", by_id(head), doc, case="DL-REVOKE")
    assert items(post(api, r, "/registry/sync/search", message(crit)))[0]["status"] == "succ"
    with session() as s:
        req = s.scalars(select(Request).where(Request.department == R, Request.case_ref == "DL-REVOKE")).one()
        auth = s.scalars(select(Authorization).where(Authorization.request_id == req.id)).one()
        revoke(s, auth.id, person_ref=keyring().pseudonym(head["id_number"]))
    (item,) = items(post(api, r, "/registry/sync/search", message(crit)))  # the same consent sent again
    assert item["status"] == "rjct" and item["status_reason_message"].endswith("REVOKED")
    # the same signed form with other terms does not undo the withdrawal; a new signed form is a new consent
    longer = criteria("idtype-value", by_id(head), authorization(head, days=90), case="DL-REVOKE")
    (item,) = items(post(api, r, "/registry/sync/search", message(longer)))
    assert item["status"] == "rjct" and item["status_reason_message"].endswith("REVOKED")
    renewed = authorization(head)
    renewed["consents"][0]["evidence_sha256"] = _sha("a new form", head["id_number"])
    (item,) = items(post(api, r, "/registry/sync/search", message(criteria("idtype-value", by_id(head), renewed,
                                                                           case="DL-REVOKE"))))
    assert item["status"] == "succ"


# -- search: asynchronous, answered on the platform's /registry/on-search ------------------------------------------
def test_an_async_search_is_acknowledged_then_answered_signed_on_the_platforms_callback(api, remote, home, callbacks):
    r, head = remote["r"], home["adults"][0]
    before = len(callbacks.at("/registry/on-search"))
    msg = message(criteria("idtype-value", by_id(head), authorization(head)))
    resp = post(api, r, "/registry/search", msg, sender_uri=callbacks.url + "/registry/on-search")
    ack = resp.json()["message"]
    assert resp.status_code == 200 and ack["ack_status"] == "ACK"
    delivered = callbacks.at("/registry/on-search")[before:]
    assert len(delivered) == 1
    body = delivered[0]
    check_request("/registry/on-search", body)
    env.verify(body["header"], body["message"], body["signature"], keyring().public_key, "HUB-210300")
    assert body["header"]["action"] == "on-search" and body["header"]["receiver_id"] == R
    assert body["message"]["transaction_id"] == msg["transaction_id"]
    assert body["message"]["correlation_id"] == ack["correlation_id"]
    (item,) = body["message"]["search_response"]
    assert item["status"] == "succ" and item["data"]["reg_records"][0]["member_identifier"][0]["identifier_value"] \
        == head["id_number"]
    assert callbacks.received[-1][1]["Authorization"] == "Bearer token-issued-by-dalian"
    with session() as s:
        txn = s.get(DciTransaction, ack["correlation_id"])
        assert (txn.mode, txn.delivery, txn.status) == ("async", "delivered", "succ")
        assert txn.payload_enc is None  # the answer is not kept once delivered
    assert _ledger("dci.callback", correlation_id=ack["correlation_id"])[-1]["delivery"] == "delivered"
    # without a default address: the header's sender_uri may be left out
    post(api, r, "/registry/search", msg | {"transaction_id": env.new_id()})
    assert len(callbacks.at("/registry/on-search")) == before + 2


def test_an_undelivered_answer_is_retried_until_acknowledged(api, remote, home, callbacks):
    r, head = remote["r"], home["adults"][0]
    callbacks.answer = (503, {"errors": []})
    try:
        ack = post(api, r, "/registry/search", message(criteria("idtype-value", by_id(head),
                                                               authorization(head)))).json()["message"]
    finally:
        callbacks.answer = None
    with session() as s:
        txn = s.get(DciTransaction, ack["correlation_id"])
        assert (txn.delivery, txn.attempts, txn.last_status) == ("pending", 1, "SERVER_ERROR")
        assert txn.payload_enc is not None and head["id_number"] not in txn.payload_enc
    later = utcnow() + dt.timedelta(minutes=5)
    assert outbox.deliver_due(now=later)["delivered"] >= 1
    with session() as s:
        assert s.get(DciTransaction, ack["correlation_id"]).delivery == "delivered"



def test_an_answer_never_acknowledged_is_given_up_after_max_attempts(api, remote, home, tmp_path, monkeypatch):
    """(A platform of its own, whose callbacks always fail: the circuit breaker it opens is its address's alone.)"""
    dead, head = Callbacks(), home["adults"][0]
    dead.answer = (500, {})
    silent = Remote("HUB-210500")
    client, silent.token = create_client("a silent platform", "federation", silent.platform,
                                         public_key=silent.public_key)
    silent.client_id = client.id
    peers = json.loads(Path(os.environ["HUB_DCI_PEERS"]).read_text(encoding="utf-8"))["peers"]
    monkeypatch.setenv("HUB_DCI_PEERS", str(peers_file(tmp_path / "peers.json", *peers, {
        "id": silent.platform, "url": dead.url, "token": "t", "public_key": silent.public_key})))
    try:
        ack = post(api, silent, "/registry/search", message(criteria("idtype-value", by_id(head),
                                                                    authorization(head)))).json()["message"]
        moment = utcnow()
        for _ in range(outbox.MAX_ATTEMPTS):
            moment += dt.timedelta(hours=2)
            outbox.deliver_due(now=moment)
    finally:
        dead.stop()
    with session() as s:
        txn = s.get(DciTransaction, ack["correlation_id"])
        assert (txn.delivery, txn.attempts) == ("failed", outbox.MAX_ATTEMPTS)
    attempts = _ledger("dci.callback", correlation_id=ack["correlation_id"])
    assert [a["delivery"] for a in attempts] == ["retry"] * (outbox.MAX_ATTEMPTS - 1) + ["failed"]


# -- transaction status ----------------------------------------------------------------------------------------------
def test_transaction_status_sync_and_async_and_only_the_platforms_own(api, remote, home, callbacks):
    r, province, head = remote["r"], remote["province"], home["adults"][0]
    searched = message(criteria("idtype-value", by_id(head), authorization(head)))
    items(post(api, r, "/registry/sync/search", searched))
    status = {"transaction_id": env.new_id(), "txnstatus_request": {
        "reference_id": env.new_id(), "txn_type": "search", "attribute_type": "transaction_id",
        "attribute_value": searched["transaction_id"]}}
    header, answer = verified(post(api, r, "/registry/sync/txn/status", status))
    assert header["action"] == "txn-on-status"
    txn_status = answer["txnstatus_response"]["txn_status"]
    assert txn_status["transaction_id"] == searched["transaction_id"]
    assert [(i["reference_id"], i["status"]) for i in txn_status["search_response"]] == [
        (searched["search_request"][0]["reference_id"], "succ")]
    assert "reg_records" not in json.dumps(answer)  # statuses only: records are not sent again
    # by reference ids and by correlation id
    by_refs = copy.deepcopy(status) | {"transaction_id": env.new_id()}
    by_refs["txnstatus_request"].update(attribute_type="reference_id_list",
                                        attribute_value=[searched["search_request"][0]["reference_id"]])
    assert verified(post(api, r, "/registry/sync/txn/status", by_refs))[1]["txnstatus_response"]["txn_status"][
        "search_response"][0]["status"] == "succ"
    # another platform asks about it: no such exchange of its own
    other = copy.deepcopy(status) | {"transaction_id": env.new_id()}
    (unknown,) = verified(post(api, province, "/registry/sync/txn/status", other))[1]["txnstatus_response"][
        "txn_status"]["search_response"]
    assert (unknown["status"], unknown["status_reason_code"]) == ("rjct", "rjct.reference_id.invalid")
    # asynchronously: acknowledged, answered on the platform's /registry/txn/on-status
    before = len(callbacks.at("/registry/txn/on-status"))
    asynchronous = copy.deepcopy(status) | {"transaction_id": env.new_id()}
    assert post(api, r, "/registry/txn/status", asynchronous).json()["message"]["ack_status"] == "ACK"
    (body,) = callbacks.at("/registry/txn/on-status")[before:]
    check_request("/registry/txn/on-status", body)
    env.verify(body["header"], body["message"], body["signature"], keyring().public_key, "HUB-210300")
    assert body["message"]["txnstatus_response"]["txn_status"]["transaction_id"] == searched["transaction_id"]
    assert _ledger("dci.txn_status", client_id=r.client_id)[-1]["mode"] == "async"
    # the province has no callback address: asynchronous exchanges are refused with err.sender_uri.invalid
    resp = post(api, province, "/registry/txn/status", copy.deepcopy(status) | {"transaction_id": env.new_id()})
    assert resp.status_code == 400 and resp.json()["message"]["error"]["code"] == "err.sender_uri.invalid"


# -- subscribe, notify, unsubscribe -----------------------------------------------------------------------------------
def test_subscribe_notify_and_unsubscribe(api, remote, home, callbacks):
    r = remote["r"]
    spouse = home["adults"][1]
    authorize = {"@type": "Authorize", "purpose": {"code": "dibao"}, "case_ref": "DL-FOLLOW"}

    def subscription(member, event="REGISTER"):
        return {"version": "1.0.0", "reg_type": env.REG_TYPE, "reg_event_type": event, "filter_type": "idtype-value",
                "filter": by_id(member), "notify_record_type": "Group", "authorize": authorize,
                "frequency": {"start_time": env.timestamp(),
                              "end_time": env.timestamp(utcnow() + dt.timedelta(days=30)), "frequency": "0 0 * * *"}}

    def subscribe(member, event="REGISTER"):
        before = len(callbacks.at("/registry/on-subscribe"))
        msg = message(subscription(member, event), key="subscribe_request", field="subscribe_criteria")
        assert post(api, r, "/registry/subscribe", msg).json()["message"]["ack_status"] == "ACK"
        (body,) = callbacks.at("/registry/on-subscribe")[before:]
        check_request("/registry/on-subscribe", body)
        env.verify(body["header"], body["message"], body["signature"], keyring().public_key, "HUB-210300")
        return body["message"]["subscribe_response"][0]

    # no request of the platform for that case names the person yet: refused, as for an unknown person
    refused = subscribe(spouse)
    assert (refused["status"], refused["status_reason_code"]) == ("rjct", "rjct.person_id.invalid")
    post(api, r, "/registry/sync/search", message(criteria("idtype-value", by_id(spouse), authorization(spouse),
                                                           case="DL-FOLLOW")))
    made = subscribe(spouse)
    assert made["status"] == "succ"
    code = made["subscriptions"][0]["code"]
    assert subscribe(spouse)["status_reason_code"] == "rjct.event.already_subscribed"
    bad = subscribe(spouse, event="Birth")
    assert bad["status_reason_code"] == "rjct.notify_types.invalid"
    assert _ledger("dci.subscribed", subscription_code=code)[0]["household_ref"] == home["household"]

    # the household's record is published again: the platform is notified (the names of what changed, no value)
    again = create_request(sample(HOME, sources=SOURCES, department=DEPARTMENT), department=DEPARTMENT)
    assert run_inline(again).status == "published"
    before = len(callbacks.at("/registry/notify"))
    sent = outbox.run_pending()
    assert sent["notifications"]["delivered"] == 1, sent
    (body,) = callbacks.at("/registry/notify")[before:]
    check_request("/registry/notify", body)
    env.verify(body["header"], body["message"], body["signature"], keyring().public_key, "HUB-210300")
    (event,) = body["message"]["notify_event"]
    records = event["data"]["reg_records"]
    assert event["data"]["reg_event_type"] == "REGISTER" and records["subscription_code"] == code
    assert records["group_identifier"][0]["identifier_value"] == keyring().scoped(home["household"], f"platform:{R}")
    for m in home["doc"]["members"]:
        assert m["id_number"] not in json.dumps(body, ensure_ascii=False) and m["name"] not in json.dumps(
            body, ensure_ascii=False)
    assert outbox.run_pending()["notifications"]["delivered"] == 0  # once
    assert _ledger("dci.notified", subscription_code=code)[-1]["delivery"] == "delivered"

    # the assistance review finds the household on a list (granted what its record does not screen yes for, or missed):
    # the platform hears of it the same way, the names of the lists only
    review_finding_is_notified(home, callbacks, code)

    # the authorization behind it expires: the next event is not sent
    with session() as s:
        req = s.scalars(select(Request).where(Request.department == R, Request.case_ref == "DL-FOLLOW")).one()
    with valid_until(req.id, utcnow() - dt.timedelta(minutes=1)):
        third = create_request(sample(HOME, sources=SOURCES, department=DEPARTMENT), department=DEPARTMENT)
        assert run_inline(third).status == "published"
        assert outbox.run_pending()["notifications"]["refused"] == 1
        assert _ledger("dci.notify_refused", subscription_code=code)[-1]["why"] == "EXPIRED"

    # unsubscribe: answered on /registry/on-unsubscribe; twice: rjct.event.already_unsubscribed
    for expected in (("succ", None), ("rjct", "rjct.event.already_unsubscribed")):
        before = len(callbacks.at("/registry/on-unsubscribe"))
        msg = {"transaction_id": env.new_id(), "timestamp": env.timestamp(), "subscription_codes": [code]}
        post(api, r, "/registry/unsubscribe", msg)
        (body,) = callbacks.at("/registry/on-unsubscribe")[before:]
        check_request("/registry/on-unsubscribe", body)
        assert (body["message"]["status"], body["message"].get("status_reason_code")) == expected
    # another platform's code reads as unknown
    before = len(callbacks.at("/registry/on-unsubscribe"))
    post(api, remote["other"], "/registry/unsubscribe", {"transaction_id": env.new_id(), "timestamp": env.timestamp(),
                                                         "subscription_codes": [code]})
    (body,) = callbacks.at("/registry/on-unsubscribe")[before:]
    assert body["message"]["status_reason_code"] == "rjct.subscription_code.invalid"


# -- the hub as a client: a peer's callbacks ------------------------------------------------------------------------
def review_finding_is_notified(home, callbacks, code):
    today = utcnow().date()
    with session() as s:
        record = s.scalars(select(HouseholdRecord).where(HouseholdRecord.household_ref == home["household"])
                           .order_by(HouseholdRecord.version.desc())).first()
        answers = {p: a.get("answer") for p, a in screening(decrypt_content(record), rules_at(today)).items()}
        no = [p for p in ("dibao", "low_income") if answers.get(p) == NO]
        assert no or YES in answers.values()  # granted what it screens no for (over), else screening yes (missed)
        if no:
            s.add(AssistanceGrant(id=uuid.uuid4().hex, household_ref=home["household"], department=DEPARTMENT,
                                  programme=no[0], granted_from=today, client_id="test"))
    result = run_review(today)
    assert result["new"] >= 1
    before = len(callbacks.at("/registry/notify"))
    assert outbox.run_pending()["notifications"]["delivered"] == 1
    (body,) = callbacks.at("/registry/notify")[before:]
    check_request("/registry/notify", body)
    records = body["message"]["notify_event"][0]["data"]["reg_records"]
    assert records["event"] == "review.flagged" and records["subscription_code"] == code
    assert records["changed"] and all(c.startswith(("review.over.", "review.missed.")) for c in records["changed"])


def test_a_peers_callbacks_complete_this_hubs_exchanges(api, remote, callbacks, home):
    """This hub sends an asynchronous search, subscription, unsubscription and status query to the peer (the loopback
    server acknowledges); the peer answers each on this hub's callbacks, signed; a notification arrives too."""
    r = remote["r"]
    head = home["adults"][0]
    ref = keyring().pseudonym(head["id_number"])
    sent_search = env.new_id()
    dci_client.send(R, "search", {"transaction_id": sent_search, "search_request": [{
        "reference_id": "ref-1", "timestamp": env.timestamp(), "search_criteria": criteria(
            "idtype-value", by_id(head), authorization(head))}]}, sync=False, persons=[ref])
    sent = callbacks.received[-1]
    assert sent[0] == "/dci/registry/search" and sent[1]["Authorization"] == "Bearer token-issued-by-dalian"
    check_request("/registry/search", sent[2])
    env.verify(sent[2]["header"], sent[2]["message"], sent[2]["signature"], keyring().public_key, "HUB-210300")
    assert sent[2]["header"]["sender_uri"].endswith("/dci/registry/on-search")

    answer = {"transaction_id": sent_search, "correlation_id": "dl-1", "search_response": [
        {"reference_id": "ref-1", "timestamp": env.timestamp(), "status": "succ",
         "data": {"version": "1.0.0", "reg_type": env.REG_TYPE, "reg_record_type": "Member", "reg_records": []}}]}
    resp = post(api, r, "/registry/on-search", answer, action="on-search", callback_header=True)
    assert resp.json()["message"]["ack_status"] == "ACK"
    assert dci_client.outcome(R, sent_search, "search", timeout_s=1) == answer
    assert _ledger("dci.on-search", platform=R)[-1]["items"][0]["status"] == "succ"
    # a callback for nothing this hub sent: 404 err.request.not_found
    stray = post(api, r, "/registry/on-search", answer | {"transaction_id": env.new_id()}, action="on-search",
                 callback_header=True)
    assert stray.status_code == 404 and stray.json()["message"]["error"]["code"] == "err.request.not_found"

    sub_tid = env.new_id()
    dci_client.send(R, "subscribe", {"transaction_id": sub_tid, "subscribe_request": [{
        "reference_id": "ref-2", "timestamp": env.timestamp(), "subscribe_criteria": {
            "reg_event_type": "REGISTER", "filter": by_id(head), "notify_record_type": "Group",
            "authorize": {"@type": "Authorize", "purpose": {"code": "dibao"}, "case_ref": "X"}}}]}, sync=False)
    check_request("/registry/subscribe", callbacks.received[-1][2])
    on_sub = {"transaction_id": sub_tid, "correlation_id": "dl-2", "subscribe_response": [
        {"reference_id": "ref-2", "timestamp": env.timestamp(), "status": "succ", "subscriptions": [
            {"code": "dl-sub-1", "status": "subscribe", "timestamp": env.timestamp()}]}]}
    post(api, r, "/registry/on-subscribe", on_sub, action="on-subscribe")
    assert dci_client.outcome(R, sub_tid, "subscribe", timeout_s=1)["subscribe_response"][0]["subscriptions"][0][
        "code"] == "dl-sub-1"

    unsub_tid = dci_client.unsubscribe(R, ["dl-sub-1"])
    check_request("/registry/unsubscribe", callbacks.received[-1][2])
    post(api, r, "/registry/on-unsubscribe", {"transaction_id": unsub_tid, "correlation_id": "dl-3",
                                              "timestamp": env.timestamp(), "status": "succ", "subscription_status": [
                                                  {"code": "dl-sub-1", "status": "unsubscribe"}]},
         action="on-unsubscribe")
    assert dci_client.outcome(R, unsub_tid, "unsubscribe", timeout_s=1)["status"] == "succ"

    status_tid = dci_client.txn_status(R, sent_search, sync=False)
    check_request("/registry/txn/status", callbacks.received[-1][2])
    post(api, r, "/registry/txn/on-status", {"transaction_id": status_tid, "correlation_id": "dl-4",
                                             "txnstatus_response": {"txn_type": "search", "txn_status": {
                                                 "transaction_id": sent_search, "correlation_id": "dl-1",
                                                 "search_response": []}}},
         action="txn-on-status", callback_header=True)
    assert dci_client.outcome(R, status_tid, "txn-status", timeout_s=1)["txnstatus_response"]["txn_type"] == "search"

    note = {"transaction_id": env.new_id(), "notify_event": [{
        "reference_id": "n-1", "timestamp": env.timestamp(), "data": {
            "version": "1.0.0", "reg_type": env.REG_TYPE, "reg_event_type": "REGISTER", "reg_record_type": "Group",
            "reg_records": {"@type": "Group", "subscription_code": "dl-sub-1", "version": 4, "changed": ["members"],
                            "group_identifier": [{"identifier_type": "PlatformPseudonym",
                                                  "identifier_value": "hh_0123"}]}}}]}
    resp = post(api, r, "/registry/notify", note, action="notify", callback_header=True)
    assert resp.json()["message"]["ack_status"] == "ACK"
    event = _ledger("dci.notify", platform=R)[-1]["events"][0]
    assert event == {"reference_id": "n-1", "reg_event_type": "REGISTER", "subscription_code": "dl-sub-1",
                     "group": "hh_0123", "version": 4}


# -- the envelope: signatures, authorization and malformed messages ------------------------------------------------
def _sync(r, head, **over):
    msg = message(criteria("idtype-value", by_id(head), authorization(head)))
    return r.header("search", **over), msg


def test_signature_refusals(api, remote, home):
    r, head = remote["r"], home["adults"][0]
    stranger = Ed25519PrivateKey.generate()

    def attempt(body, code, status=401):
        for path in ("/registry/sync/search", "/registry/search"):
            resp = post(api, r, path, None, body=body)
            assert resp.status_code == status, (path, resp.text)
            assert resp.json()["errors"][0]["code"] == code, (path, resp.text)

    header, msg = _sync(r, head)
    good = r.envelope(header, msg)
    attempt({k: v for k, v in good.items() if k != "signature"}, "err.signature.missing")
    attempt({**good, "signature": ""}, "err.signature.missing")
    attempt({**good, "signature": "invalid-signature"}, "err.signature.invalid")
    attempt({**good, "signature": r.envelope(header, msg, key=stranger)["signature"]}, "err.signature.invalid")
    attempt({**good, "signature": r.envelope(header, msg, sender=PROVINCE)["signature"]}, "err.signature.invalid")
    tampered = copy.deepcopy(good)
    tampered["message"]["search_request"][0]["search_criteria"]["query"]["value"] = home["adults"][1]["id_number"]
    attempt(tampered, "err.signature.invalid")
    retimed = copy.deepcopy(good)
    retimed["header"]["message_ts"] = env.timestamp(utcnow() - dt.timedelta(seconds=30))
    attempt(retimed, "err.signature.invalid")
    old = env.sign(header, msg, r.key, R, now=utcnow() - dt.timedelta(hours=2))
    attempt({**good, "signature": old}, "err.signature.invalid")
    # a valid signature by the platform, but the header claims to be another platform
    other = r.envelope(r.header("search", sender_id=PROVINCE), msg)
    attempt(other, "err.sender_id.invalid", status=403)
    refusals = _ledger("dci.refused", client_id=r.client_id)
    assert {"err.signature.missing", "err.signature.invalid", "err.sender_id.invalid"} <= {e["code"] for e in refusals}
    for e in refusals:
        assert head["id_number"] not in json.dumps(e)


def test_malformed_envelopes_are_answered_with_the_specs_codes_never_a_500(api, remote, home):
    r, head = remote["r"], home["adults"][0]
    _, msg = _sync(r, head)
    stale = env.timestamp(utcnow() - dt.timedelta(minutes=30))
    cases = [  # (body, error code, header reason code)
        (b"{not json", "err.request.bad", None),
        (b"\xff\xfe garbage", "err.request.bad", None),
        (json.dumps([1, 2]), "err.request.bad", None),
        (json.dumps({"message": msg}), "err.request.bad", None),
        (json.dumps({"header": "search", "message": msg}), "err.request.bad", None),
        (r.envelope(r.header("search"), None), "err.request.bad", None),
        (r.envelope(r.header("search", message_id=12345), msg), "err.request.bad", None),
        (r.envelope(r.header("search", message_id=head["id_number"]), msg), "err.request.bad", None),
        (r.envelope(r.header("search", total_count="one"), msg), "err.request.bad", "rjct.total_count.invalid"),
        (r.envelope(r.header("search", total_count=3), msg), "err.request.bad", "rjct.total_count.invalid"),
        (r.envelope(r.header("search", version="2.0.0"), msg), "err.version.not_supported", "rjct.version.invalid"),
        (r.envelope(r.header("subscribe"), msg), "err.request.bad", "rjct.action.invalid"),
        (r.envelope(r.header("search", message_ts=stale), msg), "err.request.bad", "rjct.message_ts.invalid"),
        (r.envelope(r.header("search", message_ts="yesterday"), msg), "err.request.bad", "rjct.message_ts.invalid"),
        (r.envelope(r.header("search", receiver_id="HUB-440100"), msg), "err.receiver_id.invalid", None),
        (r.envelope(r.header("search", is_msg_encrypted=True), msg), "err.encryption.invalid", None),
        (r.envelope(r.header("search"), {"header": {"alg": "RSA-OAEP", "enc": "A256GCM", "kid": "k"},
                                          "ciphertext": "x", "encrypted_key": "y", "tag": "z", "iv": "w"}),
         "err.encryption.invalid", None),
        (r.envelope(r.header("search"), {"transaction_id": env.new_id()}), "err.request.bad", None),
        (r.envelope(r.header("search"), {"transaction_id": env.new_id(), "search_request": "all"}),
         "err.request.bad", None),
        (r.envelope(r.header("search", total_count=21), {"transaction_id": env.new_id(), "search_request": [
            msg["search_request"][0]] * 21}), "err.request.bad", "rjct.total_count.limit_exceeded"),
        (b" " * (env.MAX_BODY_BYTES + 10), "err.request.bad", None),
        (b"[" * 33 + b"]" * 33, "err.request.bad", None),  # nested deeper than any JSON reader of the hub takes
        (b"[" * 100_000 + b"]" * 100_000, "err.request.bad", None),
    ]
    for body, code, reason in cases:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        sync = post(api, r, "/registry/sync/search", None, body=data)
        assert sync.status_code == 400, (code, sync.text)
        header, message_ = verified(sync)
        assert header["status"] == "rjct" and header.get("status_reason_code") == reason and message_ is None
        assert sync.json()["errors"][0]["code"] == code and header["status_reason_message"].startswith(code)
        asynchronous = post(api, r, "/registry/search", None, body=data)
        assert asynchronous.status_code == 400
        assert asynchronous.json()["message"]["ack_status"] == "ERR"
        assert asynchronous.json()["message"]["error"]["code"] == code
        assert head["id_number"] not in sync.text and head["id_number"] not in asynchronous.text
        if isinstance(body, bytes) and body.startswith(b"[" * 33):  # the reason is the nesting, as for every JSON document the hub reads
            assert "nested deeper than 32 levels" in sync.json()["errors"][0]["message"], sync.text

    # a replayed message: refused the second time, on both kinds of endpoint
    header, msg = _sync(r, head)
    once = r.envelope(header, msg)
    assert post(api, r, "/registry/sync/search", None, body=once).status_code == 200
    again = post(api, r, "/registry/sync/search", None, body=once)
    assert again.status_code == 400 and verified(again)[0]["status_reason_code"] == "rjct.message_id.duplicate"
    # a callback address outside the platform's registered one
    out = post(api, r, "/registry/search", msg | {"transaction_id": env.new_id()},
               sender_uri="https://attacker.example/registry/on-search")
    assert out.status_code == 400 and out.json()["message"]["error"]["code"] == "err.sender_uri.invalid"
    assert _ledger("dci.refused", client_id=r.client_id, reason="rjct.message_id.duplicate")


def test_the_rate_limit_answers_in_the_specs_form(api, remote, monkeypatch):
    from hub.web.ratelimit import Limit, Limiter

    r = remote["r"]
    # the app's own limiter, for this test (monkeypatch.setattr on a State would delete it on undo)
    monkeypatch.setitem(api.app.state._state, "limiter", Limiter(Limit.parse("0.01/1")))
    seen = []
    for _ in range(3):
        resp = api.post("/dci/registry/sync/search", json={}, headers=r.auth())
        seen.append(resp.status_code)
        if resp.status_code == 429:
            check_response("/registry/sync/search", 429, resp.json())
            assert resp.json()["errors"][0]["code"] == "err.request.too_many_requests"
            assert int(resp.headers["retry-after"]) >= 1
            verified(resp)
            break
    assert 429 in seen


def test_a_federation_client_needs_a_platform_code_and_a_key():
    key = Remote(R).public_key
    for args, kw in ((("x", "federation", "MZ-210302"), {"public_key": key}),
                     (("x", "federation", R), {}),
                     (("x", "federation", R), {"public_key": "not-a-key"}),
                     (("x", "department", R), {}),
                     (("x", "department", DEPARTMENT), {"public_key": key})):
        with pytest.raises(ValueError):
            create_client(*args, **kw)
    client, _ = create_client("province", "federation", "FED-210000", public_key=key)
    assert (client.role, client.department, client.public_key) == ("federation", "FED-210000", key)


def test_remote_registry_is_requested_only_with_peers(monkeypatch):
    from hub.stages.intake import InvalidRequest

    doc = sample(5, sources=("household", "remote_registry"))
    monkeypatch.delenv("HUB_DCI_PEERS", raising=False)
    with pytest.raises(InvalidRequest) as err:
        create_request(doc)
    assert "remote_registry needs federated peers" in str(err.value)


# -- the command line, and secrets ------------------------------------------------------------------------------------
def test_the_command_line_registers_a_platform_and_shows_this_hubs_identity_and_peers(tmp_path, callbacks):
    import subprocess
    import sys

    hub = str(Path(sys.executable).parent / "hub")
    run_env = {**os.environ, "HUB_HOME": str(tmp_path / "var"), "HUB_DCI_ID": "HUB-211300"}
    run_env.pop("HUB_DATABASE_URL", None)

    def hub_cli(*args):
        return subprocess.run([hub, *args], env=run_env, capture_output=True, text=True, timeout=120)

    assert hub_cli("init").returncode == 0
    identity = json.loads(hub_cli("dci", "identity").stdout)
    assert identity["platform_id"] == "HUB-211300" and identity["algorithm"] == "ed25519"
    key = env.load_public_key(identity["public_key"])
    assert env.key_id(key) == identity["key_id"]
    remote_key = Remote(R).public_key
    made = hub_cli("clients", "create", "--name", "大连", "--role", "federation", "--department", R,
                   f"--public-key={remote_key}")
    assert made.returncode == 0 and made.stdout.startswith("hub_"), made.stderr
    assert "federation, HUB-210200" in made.stderr
    for bad in (["--department", DEPARTMENT, f"--public-key={remote_key}"], ["--department", R],
                ["--department", R, "--public-key=abc"]):
        refused = hub_cli("clients", "create", "--name", "x", "--role", "federation", *bad)
        assert refused.returncode == 2 and refused.stderr.startswith("error:"), bad
    peers = peers_file(tmp_path / "peers.json", {"id": R, "name": "大连", "url": callbacks.url,
                                                 "token": "secret-token-xyz", "public_key": remote_key})
    run_env["HUB_DCI_PEERS"] = str(peers)
    listed = hub_cli("dci", "peers")
    assert listed.returncode == 0 and R in listed.stdout and "secret-token-xyz" not in listed.stdout
    assert json.loads(hub_cli("dci", "deliver").stdout) == {
        "answers": {"delivered": 0, "pending": 0, "failed": 0},
        "notifications": {"created": 0, "delivered": 0, "pending": 0, "failed": 0, "refused": 0}}
    peers.write_text('{"peers": [{"id": "nobody"}]}')
    broken = hub_cli("dci", "peers")
    assert broken.returncode == 2 and "peers[0].id" in broken.stderr
    run_env["HUB_ENV"] = "production"
    peers.chmod(0o644)
    checked = hub_cli("check-secrets")
    assert "the DCI peers file (HUB_DCI_PEERS)" in checked.stderr and "secret-token-xyz" not in checked.stderr


# -- the client side's own messages, on the wire --------------------------------------------------------------------
def test_the_remote_registry_source_asks_in_the_specs_form_and_reads_the_answer(api, home, remote, tmp_path,
                                                                              monkeypatch):
    """This hub as its own peer, through a loopback relay that checks every question and answer against the spec:
    a request naming remote_registry completes with what the 'peer' published, each fact naming it."""
    hub_id = "HUB-210300"
    _, token = create_client("this hub, as a peer of itself", "federation", hub_id,
                             public_key=env.public_key_b64(keyring().public_key))
    seen = []

    def relay(path, body):
        path = path[len("/dci"):]
        check_request(path, body)
        resp = api.post("/dci" + path, json=body, headers={"Authorization": f"Bearer {token}"})
        check_response(path, resp.status_code, resp.json())
        seen.append((path, body, resp.json()))
        return resp.status_code, resp.json()

    server = Callbacks(forward=relay)
    try:
        monkeypatch.setenv("HUB_DCI_PEERS", str(peers_file(tmp_path / "self.json", {
            "id": hub_id, "url": server.url, "token": token, "public_key": env.public_key_b64(keyring().public_key),
            "regions": ["21"]})))
        doc = sample(HOME, sources=("household", "remote_registry"), department="MZ-210303")
        result = run_inline(create_request(doc, department="MZ-210303"))
    finally:
        server.stop()
    assert result.status == "published"
    ((path, asked, answered),) = seen
    assert path == "/registry/sync/search" and len(asked["message"]["search_request"]) == len(doc["members"])
    for item in asked["message"]["search_request"]:
        crit = item["search_criteria"]
        assert crit["authorize"]["case_ref"] == f"MZ-210303/{result.request_id}"
        (own,) = [c for c in crit["consent"]["authorization"]["consents"] if c["id_number"] == crit["query"]["value"]]
        assert own["sources"] == ["remote_registry"]  # the consent to this source only, not the person's others
    from hub.stages.records import record_of_request

    _, content = record_of_request(result.request_id)
    assert content["sources"]["remote_registry"]["status"] == "complete"
    assert content["sources"]["remote_registry"]["registries"] == [hub_id]
    regs = content["facts"]["remote_registrations"]
    assert {f["person_ref"] for f in regs} == {keyring().pseudonym(m["id_number"]) for m in doc["members"]}
    assert {d["kind"] for d in content["discrepancies"]} >= {"registered_in_another_region"}
    assert all(f["registry"] == hub_id and f["from"] == "remote_registry" for f in regs)


def test_an_admin_registers_a_platform_through_the_api(api):
    _, admin = create_client("admin (dci)", "admin")
    key = Remote("FED-100000").public_key
    made = api.post("/v1/clients", headers={"Authorization": f"Bearer {admin}"}, json={
        "name": "民政部核对平台", "role": "federation", "department": "FED-100000", "public_key": key})
    assert made.status_code == 201 and made.json()["role"] == "federation", made.text
    bad = api.post("/v1/clients", headers={"Authorization": f"Bearer {admin}"}, json={
        "name": "x", "role": "federation", "department": "FED-100000"})
    assert bad.status_code == 422 and "public key" in bad.text
    resp = api.post("/dci/registry/sync/search", json={}, headers={"Authorization": f"Bearer {made.json()['token']}"})
    assert resp.status_code == 400 and resp.json()["errors"][0]["code"] == "err.request.bad"  # in, then refused
