"""The ledger's tree, checkpoints, proofs, and `hub audit verify` against every kind of tampering."""

from __future__ import annotations

import base64
import json
import re
import shutil

import pytest
from sqlalchemy import select, text

from consent import merkle
from consent.checkpoint import open_checkpoint
from consent.tree import inclusion, make_checkpoint, verifier_key, verify
from hub.cli import main
from core.crypto import keyring
from hub.stages.intake import create_request
from hub.stages.pipeline import run_inline
from consent.authorizations import log_expirations, revoke
from core.store import Authorization, AuthorizationMember, engine, session, upgrade
from tests.support.households import sample
from tests.support.servers import serve_agencies as _serve
from tests.support.store import fresh_postgres, tampering


def _fill(url: str) -> None:
    """Two verified households, a member's withdrawal of one source, an expiry, and two signed checkpoints."""
    upgrade(url)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUB_DATABASE_URL", url)
        first = create_request(sample(30))
        run_inline(first)
        with session() as s:
            make_checkpoint(s, keyring().signing_key)
        run_inline(create_request(sample(31)))
        with session() as s:
            auth = s.scalars(select(Authorization).where(Authorization.request_id == first)).one()
            member = s.scalars(select(AuthorizationMember).where(AuthorizationMember.authorization_id == auth.id)
                               .order_by(AuthorizationMember.id)).first()
            revoke(s, auth.id, person_ref=member.person_ref, source="tax")
            log_expirations(s, auth.valid_until)
            make_checkpoint(s, keyring().signing_key)
    engine(url).dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def ledger_template(request, tmp_path_factory, agencies_module):
    """A filled store per backend, made once; each test tampers with a copy of its own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'template.db'}"
        _fill(url)
        yield url
        return
    with fresh_postgres("hub_ledger") as url:
        _fill(url)
        yield url


@pytest.fixture
def ledger_db(ledger_template, tmp_path, monkeypatch):
    """A copy of the filled store (tampering drops or bypasses the append-only triggers), as HUB_DATABASE_URL."""
    if ledger_template.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        shutil.copy(ledger_template.removeprefix("sqlite:///"), url.removeprefix("sqlite:///"))
        monkeypatch.setenv("HUB_DATABASE_URL", url)
        yield url
        engine(url).dispose()
        return
    with fresh_postgres("hub_tamper", template=ledger_template.rsplit("/", 1)[1]) as url:
        monkeypatch.setenv("HUB_DATABASE_URL", url)
        yield url


def _verify():
    with session() as s:
        return verify(s, keyring().public_key)


def _sql(url, *statements):
    """Run ``statements`` as the store's owner, past the append-only triggers. ``JSON_REPLACE(col, 'a', 'b')``
    replaces text inside a JSON column on either backend."""
    pg = not url.startswith("sqlite")
    with tampering(url) as c:
        for st in statements:
            if pg:
                st = re.sub(r"JSON_REPLACE\((\w+), ", r"(replace(\1::text, ", st).replace("')/*json*/", "')::json)")
            else:
                st = st.replace("JSON_REPLACE(", "replace(").replace("')/*json*/", "')")
            c.execute(text(st))


@pytest.fixture(scope="module")
def agencies_module():
    yield from _serve("none")


def test_an_untouched_ledger_verifies_and_every_entry_has_a_proof(ledger_db):
    result = _verify()
    assert result.intact, result.problems
    assert result.leaves == result.events > 10 and result.checkpoints == 2
    with session() as s:
        for seq in (1, result.events // 2, result.events):
            p = inclusion(s, seq)
            cp = open_checkpoint(p["checkpoint"].encode(), verifier_key(keyring().public_key))
            leaf = base64.b64decode(p["leaf_hash"])
            assert leaf == merkle.leaf_hash(p["entry"].encode())
            merkle.verify_inclusion(p["leaf_index"], p["tree_size"], leaf,
                                    [base64.b64decode(h) for h in p["proof"]], cp.root)


def test_checkpoints_are_consistent_and_a_new_one_only_when_something_was_added(ledger_db):
    with session() as s:
        assert make_checkpoint(s, keyring().signing_key) is None
        rows = s.execute(text("SELECT size, root_sha256 FROM ledger_checkpoints ORDER BY number")).all()
    (s1, r1), (s2, r2) = rows
    tree = merkle.MemoryTree()
    with session() as s:
        for (h,) in s.execute(text("SELECT leaf_sha256 FROM ledger_leaves ORDER BY leaf_index")):
            tree.append_leaf_hash(bytes.fromhex(h))
    merkle.verify_consistency(s1, s2, bytes.fromhex(r1), bytes.fromhex(r2), tree.consistency_proof(s1, s2))


def test_the_ledger_tables_refuse_updates_and_deletes(ledger_db):
    for st in ("UPDATE ledger_events SET kind = 'x' WHERE seq = 1", "DELETE FROM ledger_leaves WHERE leaf_index = 0",
               "UPDATE ledger_nodes SET hash = 'x'", "DELETE FROM ledger_checkpoints",
               # consent changes only by appending
               "UPDATE authorizations SET valid_until = valid_until", "DELETE FROM revocations",
               "UPDATE authorization_members SET sources = sources", "DELETE FROM authorization_expiries"):
        with pytest.raises(Exception, match="append-only"):
            with engine(ledger_db).begin() as c:
                c.execute(text(st))
    assert _verify().intact


TAMPERING = [
    ("event payload changed", ["UPDATE ledger_events SET payload = JSON_REPLACE(payload, 'household', 'tax')/*json*/ "
                               "WHERE seq = (SELECT min(seq) FROM ledger_events WHERE kind = 'consent.allowed')"],
     "ledger_events: event seq"),
    ("event kind changed", ["UPDATE ledger_events SET kind = 'consent.allowed' WHERE kind = 'record.published'"],
     "ledger_events: event seq"),
    ("event deleted", ["DELETE FROM ledger_events WHERE seq = 3"], "ledger_events: event seq 3"),
    ("event time changed", ["UPDATE ledger_events SET recorded_at = '2020-01-01 00:00:00' WHERE seq = 2"],
     "ledger_events: event seq 2"),
    ("leaf hash changed", ["UPDATE ledger_leaves SET leaf_sha256 = '" + "0" * 64 + "' WHERE leaf_index = 5"],
     "ledger_leaves: leaf 5"),
    ("leaf deleted", ["DELETE FROM ledger_leaves WHERE leaf_index = 4"], "ledger_leaves: leaf 4"),
    ("last leaf deleted", ["DELETE FROM ledger_leaves WHERE leaf_index = (SELECT max(leaf_index) FROM ledger_leaves)"],
     "ledger_leaves: checkpoint 2"),
    ("node changed", ["UPDATE ledger_nodes SET hash = '" + "1" * 64 + "' WHERE level = 1 AND \"index\" = 0"],
     "ledger_nodes: node (1, 0)"),
    ("node deleted", ["DELETE FROM ledger_nodes WHERE level = 2 AND \"index\" = 0"], "ledger_nodes: node (2, 0)"),
    ("checkpoint note changed", ["UPDATE ledger_checkpoints SET note = replace(note, '\n', '\n\n') WHERE number = 1"],
     "ledger_checkpoints: checkpoint 1"),
    ("checkpoint size column changed", ["UPDATE ledger_checkpoints SET size = size - 1 WHERE number = 2"],
     "ledger_checkpoints: checkpoint 2"),
    ("first checkpoint deleted", ["DELETE FROM ledger_checkpoints WHERE number = 1"], "checkpoint 1 is missing"),
    ("latest checkpoint deleted", ["DELETE FROM ledger_checkpoints WHERE number = 2"], "a checkpoint was removed"),
    ("published record replaced", ["UPDATE household_records SET content_sha256 = '" + "2" * 64 + "'"],
     "household_records: record"),
    ("record content swapped between versions", [
        "UPDATE household_records SET content_enc = (SELECT content_enc FROM household_records ORDER BY id DESC LIMIT 1)"
        " WHERE id = (SELECT min(id) FROM household_records)"], "household_records: record"),
    ("authorization receipt changed", ["UPDATE authorizations SET receipt = JSON_REPLACE(receipt, '\"dibao\"', "
                                       "'\"medical\"')/*json*/"], "authorizations: authorization"),
    # the ledger vouches for consent itself: every term the gate rests on, every withdrawal, every row
    ("authorization validity lengthened", ["UPDATE authorizations SET valid_until = '2099-01-01 00:00:00'"],
     "differs from what was logged: valid_until"),
    ("authorization purpose switched", ["UPDATE authorizations SET purpose = 'medical'"],
     "differs from what was logged: purpose"),
    ("consented sources widened", ["UPDATE authorization_members SET sources = JSON_REPLACE(sources, '\"household\"', "
                                   "'\"household\", \"bank\"')/*json*/"], ".sources"),
    ("financial consent widened", ["UPDATE authorization_members SET financial_sources = '[\"bank\"]', "
                                   "financial_evidence_sha256 = '" + "3" * 64 + "'"], ".financial_sources"),
    ("guardian cover changed", ["UPDATE authorization_members SET guardian_ref = person_ref"], ".guardian_ref"),
    ("revocation undone", ["DELETE FROM revocations"], "a withdrawal of consent was undone"),
    ("revocation moved later", ["UPDATE revocations SET revoked_at = '2099-01-01 00:00:00'"],
     "differs from what was logged: revoked_at"),
    ("revocation added without its entry", [
        "INSERT INTO revocations (authorization_id, person_ref, source, revoked_at) "
        "SELECT id, NULL, NULL, '2026-01-01 00:00:00' FROM authorizations"], "has no ledger entry"),
    ("member deleted", ["DELETE FROM authorization_members WHERE id = (SELECT max(id) FROM authorization_members)"],
     "(deleted)"),
    ("authorization deleted", [
        "DELETE FROM revocations", "DELETE FROM authorization_members", "DELETE FROM authorization_expiries",
        "DELETE FROM authorizations"], "is missing: it was deleted"),
    ("published record deleted", [
        "DELETE FROM deliveries", "DELETE FROM notifications WHERE record_id = (SELECT max(id) FROM household_records)",
        "DELETE FROM household_records WHERE id = (SELECT max(id) FROM household_records)"],
     "is missing: a published record was deleted"),
]


@pytest.mark.parametrize("name, statements, named", TAMPERING, ids=[t[0] for t in TAMPERING])
def test_any_single_change_or_deletion_is_found_and_named(ledger_db, name, statements, named):
    _sql(ledger_db, *statements)
    result = _verify()
    assert not result.intact
    assert any(named in p for p in result.problems), result.problems


def test_hub_audit_verify_exits_non_zero_and_says_what_changed(ledger_db, capsys):
    assert main(["audit", "verify"]) == 0
    assert "intact" in capsys.readouterr().out
    _sql(ledger_db, "DELETE FROM ledger_events WHERE seq = 7")
    assert main(["audit", "verify"]) == 1
    assert "event seq 7" in capsys.readouterr().err


def test_hub_audit_proof_prints_a_proof_that_verifies(ledger_db, capsys):
    assert main(["audit", "proof", "4"]) == 0
    p = json.loads(capsys.readouterr().out)
    cp = open_checkpoint(p["checkpoint"].encode(), verifier_key(keyring().public_key))
    merkle.verify_inclusion(p["leaf_index"], p["tree_size"], base64.b64decode(p["leaf_hash"]),
                            [base64.b64decode(h) for h in p["proof"]], cp.root)
    assert main(["audit", "proof", "999999"]) == 2
