"""The DCI API (hub/dci) under hostile messages that pass the envelope: a platform's validly signed search,
subscription, status query and callback with values dropped, of the wrong type, huge, nested, NUL, lone surrogates,
ID numbers in every field. Every answer is one the spec allows for that path and status (never a 5xx: an unexpected
failure would be a 503), and no error text carries an ID number of the message."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from hub.web.app import create_app
from hub.services.clients import create_client
from connectors import envelope as env
from tests.support.dci import Callbacks, Remote, check_response, peers_file
from tests.support.fuzz import JSON_LIKE, assert_no_ids, ci, id_numbers, paths as _paths
from tests.support.households import sample
from tests.support.servers import rate_limits_off, serve_agencies as _serve

PLATFORM = "HUB-219900"


@pytest.fixture(scope="module", autouse=True)
def _no_rate_limit():
    yield from rate_limits_off()


@pytest.fixture(scope="module")
def world(tmp_path_factory, module_database):  # on SQLite and on PostgreSQL
    from hub.stages.intake import create_request
    from hub.stages.pipeline import run_inline

    agencies = _serve("none")
    next(agencies)
    doc = sample(9)
    assert run_inline(create_request(doc)).status == "published"
    remote = Remote(PLATFORM)
    client, remote.token = create_client("fuzzed platform", "federation", PLATFORM, public_key=remote.public_key)
    remote.client_id = client.id
    callbacks = Callbacks()
    mp = pytest.MonkeyPatch()
    mp.setenv("HUB_DCI_PEERS", str(peers_file(tmp_path_factory.mktemp("fuzz-dci") / "peers.json", {
        "id": PLATFORM, "url": callbacks.url, "token": "t", "public_key": remote.public_key})))
    yield {"api": TestClient(create_app()), "remote": remote, "doc": doc}
    mp.undo()
    callbacks.stop()
    next(agencies, None)


def _search(doc: dict) -> dict:
    member = doc["members"][0]
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    return {"transaction_id": env.new_id(), "search_request": [{
        "reference_id": env.new_id(), "timestamp": env.timestamp(), "search_criteria": {
            "version": "1.0.0", "reg_type": env.REG_TYPE, "query_type": "idtype-value",
            "query": {"type": "NationalID", "value": member["id_number"]},
            "sort": [{"attribute_name": "birth_date", "sort_order": "asc"}], "pagination": {"page_size": 5},
            "authorize": {"@type": "Authorize", "purpose": {"code": "dibao"}, "case_ref": "FZ-1"},
            "consent": {"@type": "Consent", "purpose": {"code": "dibao"}, "authorization": {
                "valid_from": start.isoformat(), "valid_until": (start + dt.timedelta(days=30)).isoformat(),
                "consents": [{"id_number": member["id_number"], "sources": ["remote_registry"],
                              "evidence_sha256": "ab" * 32}]}}}}]}


def _subscribe(doc: dict) -> dict:
    return {"transaction_id": env.new_id(), "subscribe_request": [{
        "reference_id": env.new_id(), "timestamp": env.timestamp(), "subscribe_criteria": {
            "reg_event_type": "REGISTER", "notify_record_type": "Group", "filter_type": "idtype-value",
            "filter": {"type": "NationalID", "value": doc["members"][0]["id_number"]},
            "authorize": {"@type": "Authorize", "purpose": {"code": "dibao"}, "case_ref": "FZ-1"}}}]}


BASES = {
    "/registry/sync/search": ("search", False, _search),
    "/registry/search": ("search", False, _search),
    "/registry/subscribe": ("subscribe", False, _subscribe),
    "/registry/unsubscribe": ("unsubscribe", False, lambda doc: {
        "transaction_id": env.new_id(), "timestamp": env.timestamp(), "subscription_codes": ["x"]}),
    "/registry/sync/txn/status": ("txn-status", False, lambda doc: {"transaction_id": env.new_id(),
                                                                    "txnstatus_request": {
        "reference_id": "r", "txn_type": "search", "attribute_type": "reference_id_list", "attribute_value": ["r"]}}),
    "/registry/on-search": ("on-search", True, lambda doc: {"transaction_id": env.new_id(), "correlation_id": "c",
                                                            "search_response": []}),
    "/registry/notify": ("notify", True, lambda doc: {"transaction_id": env.new_id(), "notify_event": [{
        "reference_id": "n", "timestamp": env.timestamp(), "data": {"reg_record_type": "Group",
                                                                    "reg_records": {}}}]}),
}


@st.composite
def mutated(draw, base: dict) -> dict:
    """``base`` with a few of its values replaced by hostile ones, or removed."""
    out = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(out) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = out
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(st.one_of(JSON_LIKE, id_numbers()))
    return out


def _error_texts(body) -> str:
    texts = []
    if isinstance(body, dict):
        texts += [e.get("message", "") for e in body.get("errors") or []]
        message = body.get("message") if isinstance(body.get("message"), dict) else {}
        texts.append(str((message.get("error") or {}).get("message", "")))
        texts.append(str((body.get("header") or {}).get("status_reason_message", "")))
        for item in message.get("search_response") or []:
            texts.append(str(item.get("status_reason_message", "")))
    return "\n".join(texts)


@pytest.mark.parametrize("path", sorted(BASES))
def test_signed_hostile_messages_get_an_answer_of_the_spec(world, path):
    action, callback, base = BASES[path]

    @given(message=st.one_of(mutated(base(world["doc"])), JSON_LIKE), count=st.integers(0, 3))
    @ci(0.25)
    def run(message, count):
        remote = world["remote"]
        header = remote.header(action, total_count=count or 1, callback=callback)
        try:
            body = remote.envelope(header, message)
        except UnicodeError:  # a lone surrogate cannot be signed: the hub must still refuse it cleanly
            body = {"signature": "x", "header": header, "message": message}
        resp = world["api"].post("/dci" + path, content=json.dumps(body), headers=remote.auth())  # \ud800 escaped
        assert resp.status_code < 500, resp.text[:500]
        check_response(path, resp.status_code, resp.json())
        assert_no_ids(_error_texts(resp.json()), message)

    run()
