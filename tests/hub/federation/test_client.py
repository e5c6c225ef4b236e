"""Two hubs of different regions on loopback (部省联网, 跨地区核对): Anshan's (this session's store, SQLite) and
Dalian's (its own HUB_HOME and keys, a PostgreSQL database, its own simulated agencies), each serving its API in a
process of its own, each registered as the other's federation client and peer.

A civil-affairs request in Anshan names a member registered in Dalian, who consented to ``remote_registry``: the
request completes with that member's data from Dalian's published record, through the consent gates of both hubs,
and each ledger shows its side. The same over the asynchronous search (Dalian answers on Anshan's on-search), and
a subscription in Dalian that notifies Anshan when the member's household is published again."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from agencies.population import household_in_population
from agencies.requests import sample_request
from hub.services.clients import create_client
from core.crypto import keyring
from hub.federation import client as dci_client
from connectors.envelope import public_key_b64
from hub.stages.intake import create_request
from hub.stages.pipeline import run_inline
from hub.stages.records import load_record, record_of_request
from hub.services.scan import files_under
from core.store import DciTransaction, engine, session
from tests.support.servers import free_port as _free_port, rate_limits_off, serve_agencies as _serve, serve_api
from tests.support.store import ledger_entries as _ledger, POSTGRES_ADMIN_URL
from tests.support.dci import peers_file

ANSHAN, DALIAN = "HUB-210300", "HUB-210200"
HUB = str(Path(sys.executable).parent / "hub")
A_DEPARTMENT, B_DEPARTMENT = "MZ-210302", "MZ-210202"
A_HOUSEHOLD = 16  # seed 7: head and spouse
B_HOUSEHOLD = 12  # seed 11, Dalian's population: head, spouse, an adult daughter, a parent
B_SOURCES = ("household", "tax", "social_insurance")
ENV_KEYS = ("HUB_HOME", "HUB_DATABASE_URL", "HUB_AGENCIES_URL", "HUB_DCI_ID", "HUB_DCI_PEERS", "HUB_DCI_URL",
            "HUB_API_RATE")

pytestmark = pytest.mark.timeout(900)


@contextlib.contextmanager
def as_hub(values: dict):
    """This process works as another hub (its HUB_HOME, store, identity) inside the block, with nothing else of
    this process running meanwhile."""
    old = {k: os.environ.get(k) for k in ENV_KEYS}
    try:
        for k in ENV_KEYS:
            if values.get(k) is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = values[k]
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _serve_api(values: dict, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update({k: v for k, v in values.items() if v is not None})
    return serve_api(env, port, log)


@pytest.fixture(scope="module", autouse=True)
def _no_rate_limit():
    yield from rate_limits_off("HUB_AIRFLOW_URL")


@pytest.fixture(scope="module")
def anshan_agencies():
    yield from _serve("none")


@pytest.fixture(scope="module")
def dalian_db():
    name = f"hub_dalian_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    engine(url).dispose()
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def hubs(tmp_path_factory, dalian_db, anshan_agencies):
    """Both hubs, their APIs serving, each the other's federation client and peer; Dalian has published the
    record of its household B_HOUSEHOLD."""
    from agencies.server import AgencyServer
    from hub.services.bootstrap import initialize

    root = tmp_path_factory.mktemp("federation")
    a_port, b_port = _free_port(), _free_port()
    a_url, b_url = f"http://127.0.0.1:{a_port}/dci", f"http://127.0.0.1:{b_port}/dci"
    a_key = public_key_b64(keyring().public_key)
    b_env = {"HUB_HOME": str(root / "dalian"), "HUB_DATABASE_URL": dalian_db, "HUB_DCI_ID": DALIAN,
             "HUB_DCI_URL": b_url, "HUB_API_RATE": "0"}
    with as_hub(b_env):
        initialize()
        b_agencies = AgencyServer.from_hub_home(households=20, seed=11).start()
        os.environ["HUB_AGENCIES_URL"] = b_agencies.url
        b_env["HUB_AGENCIES_URL"] = b_agencies.url
        b_doc = sample_request(seed=11, households=20, k=B_HOUSEHOLD, sources=B_SOURCES, department=B_DEPARTMENT)
        b_request = create_request(b_doc, department=B_DEPARTMENT)
        assert run_inline(b_request).status == "published"
        b_key = public_key_b64(keyring().public_key)
        _, a_token_at_b = create_client("鞍山市社会救助核对平台", "federation", ANSHAN, public_key=a_key)
    _, b_token_at_a = create_client("大连市社会救助核对平台", "federation", DALIAN, public_key=b_key)
    b_env["HUB_DCI_PEERS"] = str(peers_file(root / "dalian-peers.json", {
        "id": ANSHAN, "name": "鞍山", "url": a_url, "token": b_token_at_a, "public_key": a_key}))
    a_peers = peers_file(root / "anshan-peers.json", {
        "id": DALIAN, "name": "大连", "url": b_url, "token": a_token_at_b, "public_key": b_key, "regions": ["*"]})
    a_env = {k: os.environ.get(k) for k in ENV_KEYS} | {"HUB_DCI_PEERS": str(a_peers), "HUB_DCI_URL": a_url,
                                                        "HUB_API_RATE": "0", "HUB_DCI_ID": ANSHAN}
    procs = [_serve_api(b_env, b_port, root / "dalian-api.log"), _serve_api(a_env, a_port, root / "anshan-api.log")]
    mp = pytest.MonkeyPatch()
    for k in ("HUB_DCI_PEERS", "HUB_DCI_URL", "HUB_DCI_ID"):
        mp.setenv(k, a_env[k])
    b_member = next(m for m in b_doc["members"] if m["relation"] == "daughter")
    try:
        yield {"root": root, "b_env": b_env, "b_doc": b_doc, "b_request": b_request, "b_member": b_member,
               "b_agencies": b_agencies, "a_peers": a_peers, "a_token_at_b": a_token_at_b, "b_key": b_key,
               "b_url": b_url}
    finally:
        mp.undo()
        for p in procs:
            p.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)
            if p.poll() is None:
                p.kill()
        b_agencies.stop()
        with as_hub(b_env):
            engine().dispose()


def anshan_request(hubs, *, case: str) -> tuple[str, dict]:
    """Anshan's dibao request for its household A_HOUSEHOLD, with the member registered in Dalian added (a spouse
    whose household registration stayed there), every adult consenting to household and remote_registry."""
    doc = sample_request(seed=7, households=50, k=A_HOUSEHOLD, sources=("household", "remote_registry"),
                         department=A_DEPARTMENT)
    doc["case_ref"] = case
    b_member = hubs["b_member"]
    doc["members"].append({"id_number": b_member["id_number"], "name": b_member["name"], "relation": "other"})
    doc["authorization"]["consents"].append({
        "id_number": b_member["id_number"], "sources": ["household", "remote_registry"],
        "evidence_sha256": "5e" * 32})
    return create_request(doc, department=A_DEPARTMENT), doc


def scanned(paths: list[Path], people: list[tuple[str, str]]) -> list[list]:
    """hub.services.scan over ``paths``, in a process of its own: this one holds the session's SQLite store open, and a
    process that opens and closes a database's files drops the POSIX locks its own connections hold on them."""
    code = ("import json, sys; from hub.services.scan import scan; from pathlib import Path; doc = json.load(sys.stdin); "
            "print(json.dumps([list(f.__dict__.values()) for f in scan([Path(p) for p in doc['paths']], "
            "[tuple(x) for x in doc['people']])]))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps({"paths": [str(p) for p in paths],
                                                                          "people": people}),
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def dalian_ledger(hubs, kind: str, /, **match) -> list[dict]:
    with as_hub(hubs["b_env"]):
        return _ledger(kind, **match)


def test_a_request_in_anshan_completes_with_a_members_data_from_dalian(hubs):
    b_member = hubs["b_member"]
    known_here = {m.id_number for k in range(50) for m in household_in_population(7, 50, k).members}
    assert b_member["id_number"] not in known_here  # Anshan's household registration does not know them
    request_id, doc = anshan_request(hubs, case="AS-DB-2026-0042")
    result = run_inline(request_id)
    assert result.status == "published"
    record, content = record_of_request(request_id)

    # the record says where the member's data came from
    assert content["sources"]["remote_registry"]["status"] == "complete"
    assert content["sources"]["remote_registry"]["registries"] == [DALIAN]
    assert content["authority"]["remote_registration"] == "remote_registry"
    b_ref_here = keyring().pseudonym(b_member["id_number"])
    (found,) = content["facts"]["remote_registrations"]
    assert found["person_ref"] == b_ref_here and found["registry"] == DALIAN and found["from"] == "remote_registry"
    assert found["status"] == "normal" and found["relation"] == "daughter"
    assert {d["kind"] for d in content["discrepancies"] if d["person_ref"] == b_ref_here} >= {"member_not_registered"}

    # ... and it is what Dalian published for them
    with as_hub(hubs["b_env"]):
        _, first = record_of_request(hubs["b_request"])
        # Dalian's latest record of the household, the one it answers with (another test may republish it)
        b_record, b_content = load_record(first["household_ref"])
        b_ref_there = keyring().pseudonym(b_member["id_number"])
        b_scoped = keyring().scoped(b_content["household_ref"], f"platform:{ANSHAN}")
    own = [f for f in b_content["facts"]["income"] if f["person_ref"] == b_ref_there]
    assert found["record_version"] == b_record.version and found["record_sha256"] == b_record.content_sha256
    assert found["household"] == b_scoped != b_content["household_ref"]  # Dalian's pseudonym, re-keyed for Anshan
    assert found["income_total"] == (round(sum(f["amount"] for f in own), 2) if own else None)
    assert found["income_months"] == (len({f["period"] for f in own}) if own else None)
    assert found["members_counted"] == b_content["assessment"]["members_counted"]
    assert found["screening"] == {p: v["answer"] for p, v in b_content["assessment"]["screening"].items()}
    assert b_ref_there != b_ref_here  # each hub's pseudonyms are its own

    # Anshan's ledger: the gate's decision for the member and source, the exchange with Dalian, the fetch
    allowed = _ledger("consent.allowed", request_id=request_id, person_ref=b_ref_here, source="remote_registry")
    assert len(allowed) == 1
    (sent,) = _ledger("dci.sent", request_id=request_id)
    assert sent["peer"] == DALIAN and sent["mode"] == "sync" and sent["outcomes"][b_ref_here] == "found"
    assert set(sent["persons"]) == {keyring().pseudonym(m["id_number"]) for m in doc["members"]}
    assert {v for k, v in sent["outcomes"].items() if k != b_ref_here} == {"none"}  # Dalian knows nobody else
    (fetched,) = _ledger("fetch.completed", request_id=request_id, source="remote_registry")
    assert fetched["status"] == "complete" and fetched["returned"] == 1

    # Dalian's ledger: Anshan's entrustment and authorization, its gate's decisions, the search it answered
    # (the request Dalian made for this exchange: the one its searches of this transaction name)
    federated = dalian_ledger(hubs, "dci.search", transaction_id=sent["transaction_id"])[0]["request_id"]
    (entrusted,) = dalian_ledger(hubs, "entrustment.received", department=ANSHAN, kind="federated",
                                 request_id=federated)
    assert dalian_ledger(hubs, "authorization.granted", request_id=federated, department=ANSHAN)
    assert dalian_ledger(hubs, "consent.allowed", request_id=federated, person_ref=b_ref_there,
                         source="remote_registry")
    searches = dalian_ledger(hubs, "dci.search", transaction_id=sent["transaction_id"])
    assert len(searches) == len(doc["members"])  # one question per member, in one message
    assert {(e["platform"], e["status"], e["mode"], e["policy_rule"]) for e in searches} == {
        (ANSHAN, "succ", "sync", "federation")}
    search = next(e for e in searches if e["persons"] == [b_ref_there])
    assert search["records"] == [{"household_ref": b_content["household_ref"], "version": b_record.version}]
    assert all(e["records"] == [] for e in searches if e is not search)
    assert dalian_ledger(hubs, "record.read", department=ANSHAN, household_ref=b_content["household_ref"],
                         via="dci")

    # nobody's ID number or name in the logs of either hub, nor in Anshan's store files
    from core.settings import settings

    people = [(m["id_number"], m["name"]) for m in doc["members"]]
    logs = [hubs["root"] / "dalian-api.log", hubs["root"] / "anshan-api.log"]
    stores = [p for p in settings().home.glob("hub.db*")]
    assert scanned(files_under(*logs, *stores, Path(hubs["b_env"]["HUB_HOME"])), people) == []
    planted = hubs["root"] / "planted.log"  # and the scan does see one where it is
    planted.write_text(f"asked about {b_member['id_number']}", encoding="utf-8")
    assert scanned([planted], people) == [[str(planted), "id_number", len(people) - 1]]


def test_the_asynchronous_search_is_answered_on_anshans_on_search(hubs, tmp_path):
    peers = json.loads(hubs["a_peers"].read_text())
    peers["peers"][0]["mode"] = "async"
    async_peers = peers_file(tmp_path / "anshan-async-peers.json", *peers["peers"])
    mp = pytest.MonkeyPatch()
    mp.setenv("HUB_DCI_PEERS", str(async_peers))
    try:
        request_id, _doc = anshan_request(hubs, case="AS-DB-2026-0043")
        assert run_inline(request_id).status == "published"
    finally:
        mp.undo()
    _, content = record_of_request(request_id)
    assert content["sources"]["remote_registry"]["status"] == "complete"
    assert [f["registry"] for f in content["facts"]["remote_registrations"]] == [DALIAN]
    (sent,) = _ledger("dci.sent", request_id=request_id)
    assert sent["mode"] == "async"
    with session() as s:  # the callback Anshan's API received completed the exchange
        out = s.scalars(select(DciTransaction).where(DciTransaction.direction == "out",
                                                     DciTransaction.transaction_id == sent["transaction_id"])).one()
        assert out.status == "succ" and out.payload_enc is None  # read by the fetch, which keeps the raw answer
    assert _ledger("dci.on-search", platform=DALIAN, transaction_id=sent["transaction_id"])
    searches = dalian_ledger(hubs, "dci.search", transaction_id=sent["transaction_id"])
    assert searches and {e["mode"] for e in searches} == {"async"}
    search = searches[0]
    assert dalian_ledger(hubs, "dci.callback", correlation_id=search["correlation_id"])[-1]["delivery"] == "delivered"

    # and Anshan asks Dalian for the status of that exchange
    status = dci_client.txn_status(DALIAN, sent["transaction_id"])
    (item,) = status["txnstatus_response"]["txn_status"]["search_response"][:1]
    assert status["txnstatus_response"]["txn_status"]["transaction_id"] == sent["transaction_id"]
    assert item["status"] == "succ"


def test_anshan_follows_the_members_household_in_dalian_and_is_notified(hubs):
    request_id, _doc = anshan_request(hubs, case="AS-DB-2026-0044")
    assert run_inline(request_id).status == "published"
    b_ref_here = keyring().pseudonym(hubs["b_member"]["id_number"])
    tid = dci_client.subscribe(DALIAN, request_id, b_ref_here)
    answer = dci_client.outcome(DALIAN, tid, "subscribe", timeout_s=30)
    assert answer is not None, "no on-subscribe from Dalian"
    (item,) = answer["subscribe_response"]
    assert item["status"] == "succ", item
    code = item["subscriptions"][0]["code"]

    # Dalian publishes the household again (a department's re-check there), then sends what is due
    with as_hub(hubs["b_env"]):
        again = create_request(sample_request(seed=11, households=20, k=B_HOUSEHOLD, sources=B_SOURCES,
                                              department=B_DEPARTMENT), department=B_DEPARTMENT)
        assert run_inline(again).status == "published"
        from hub.dci.outbox import run_pending

        sent = run_pending()
    assert sent["notifications"]["delivered"] == 1, sent
    (event,) = _ledger("dci.notify", platform=DALIAN)[-1]["events"]
    assert event["subscription_code"] == code and event["reg_event_type"] == "REGISTER"
    assert dalian_ledger(hubs, "dci.notified", subscription_code=code)[-1]["delivery"] == "delivered"
    assert dalian_ledger(hubs, "dci.subscribed", subscription_code=code)[0]["platform"] == ANSHAN

    # Anshan ends it
    done = dci_client.unsubscribe(DALIAN, [code])
    assert dci_client.outcome(DALIAN, done, "unsubscribe", timeout_s=30)["status"] == "succ"
    assert dalian_ledger(hubs, "dci.unsubscribed", subscription_code=code)


def test_a_peer_that_answers_with_another_key_is_not_believed(hubs, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    peers = json.loads(hubs["a_peers"].read_text())
    peers["peers"][0]["public_key"] = public_key_b64(Ed25519PrivateKey.generate().public_key())
    wrong = peers_file(tmp_path / "anshan-wrong-key.json", *peers["peers"])
    mp = pytest.MonkeyPatch()
    mp.setenv("HUB_DCI_PEERS", str(wrong))
    try:
        request_id, _doc = anshan_request(hubs, case="AS-DB-2026-0045")
        assert run_inline(request_id).status == "published"
    finally:
        mp.undo()
    _, content = record_of_request(request_id)
    assert content["sources"]["remote_registry"]["status"] == "unavailable"
    assert content["sources"]["remote_registry"]["reason"] == "BAD_RESPONSE"
    assert "remote_registrations" not in content["facts"] or content["facts"]["remote_registrations"] == []
    assert _ledger("dci.sent", request_id=request_id)[-1]["failure"] == "BAD_RESPONSE"
