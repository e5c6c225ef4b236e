"""Field encryption at rest: values bound to their table, column, row and key id; key rotation while the hub keeps
serving, losing nothing; old keys retired only when nothing needs them. In a HUB_HOME of its own (the rotation
changes the keyring, which the rest of the test session shares)."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import select, text

from consent.tree import make_checkpoint, verify
from hub.services import rotation
from core.crypto import DecryptionFailed, keyring
from hub.stages.intake import create_request
from hub.federation.client import member_id_numbers
from hub.stages.pipeline import run_inline
from hub.stages.records import load_record
from core.store import HouseholdRecord, Request, RequestMember, SourceRow, aad_member, aad_source_row, session
from tests.support.households import sample


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from hub.services.bootstrap import initialize
    from tests.support.servers import serve_agencies as _serve

    saved = {k: os.environ.get(k) for k in ("HUB_HOME", "HUB_DATABASE_URL")}
    os.environ["HUB_HOME"] = str(tmp_path_factory.mktemp("rotation") / "var")
    os.environ.pop("HUB_DATABASE_URL", None)
    initialize()
    agencies = _serve("none")
    next(agencies)
    try:
        published = [run_inline(create_request(sample(k, sources=["household", "tax", "bank"]))) for k in (3, 4, 5)]
        assert all(r.status == "published" for r in published)
        yield published
    finally:
        next(agencies, None)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _plaintexts() -> dict[tuple[str, int], str]:
    """Every encrypted value of the store, decrypted, by (column, row id)."""
    keys = keyring()
    out = {}
    with session() as s:
        for column in rotation.COLUMNS:
            for row in s.scalars(select(column.model)):
                out[(column.label, getattr(row, column.key))] = keys.decrypt(getattr(row, column.name),
                                                                             aad=column.aad(row))
    return out


def test_a_ciphertext_moved_to_another_row_or_relabelled_fails_to_decrypt(home):
    keys = keyring()
    with session() as s:
        a, b = s.scalars(select(RequestMember).where(RequestMember.request_id == home[0].request_id)
                         .order_by(RequestMember.id).limit(2)).all()
        assert keys.decrypt(a.id_number_enc, aad=aad_member(a.request_id, "id_number_enc", a.person_ref))
        with pytest.raises(DecryptionFailed):  # b's ID number in a's row
            keys.decrypt(b.id_number_enc, aad=aad_member(a.request_id, "id_number_enc", a.person_ref))
        with pytest.raises(DecryptionFailed):  # the name column's value in the ID number column
            keys.decrypt(a.name_enc, aad=aad_member(a.request_id, "id_number_enc", a.person_ref))
        r0, r1 = s.scalars(select(SourceRow).limit(2)).all()
        with pytest.raises(DecryptionFailed):
            keys.decrypt(r1.data_enc, aad=aad_source_row(r0.batch_id, r0.row_no))
        rec = s.scalars(select(HouseholdRecord).limit(1)).first()
        assert rec.content_enc.startswith(f"v3.{keys.active_kid}.")  # compressed
    # the same sealed value under another key id in its label: refused (the key id is bound too)
    other = rotation.new_key()
    relabelled = a.id_number_enc.replace(f"v2.{a.id_number_enc.split('.')[1]}.", f"v2.{other}.", 1)
    with pytest.raises(DecryptionFailed):
        keyring().decrypt(relabelled, aad=aad_member(a.request_id, "id_number_enc", a.person_ref))
    rotation.reencrypt()


def _key_events() -> list[str]:
    with session() as s:
        return [k for (k,) in s.execute(text("SELECT kind FROM ledger_events WHERE kind LIKE 'keys.%'"))]


def test_rotation_under_load_loses_nothing_and_retires_the_old_key_only_when_unused(home):
    rotated_before = _key_events().count("keys.rotated")  # another test of the module may have added a key first
    before = _plaintexts()
    old = keyring().active_kid
    with pytest.raises(rotation.KeyInUse):
        rotation.retire(old)  # active, and every value needs it
    households = [r.household_ref for r in home]
    errors: list[str] = []
    created: list[str] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                for hh in households:
                    load_record(hh)
                with session() as s:
                    member_id_numbers(s, home[0].request_id)
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc.__class__.__name__)

    def writer():
        k = 10
        while not stop.is_set() and k < 40:
            try:
                created.append(create_request(sample(k, sources=["household"])))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc.__class__.__name__)
            k += 1

    threads = [threading.Thread(target=reader), threading.Thread(target=reader), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    try:
        new, moved = rotation.rotate(batch=7)  # small transactions: readers and the writer run between them
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    assert created  # the writer ran during the rotation
    assert new != old and sum(moved.values()) >= len(before)
    rotation.reencrypt()  # values the writer sealed with the old key before it saw the new keyring
    after = _plaintexts()
    assert {k: v for k, v in after.items() if k in before} == before  # nothing lost, nothing altered
    assert len(after) == len(before) + 2 * sum(len(sample(k)["members"]) for k in range(10, 10 + len(created)))
    usage = rotation.usage()
    assert not usage[old] and sum(usage[new].values()) == len(after)
    with session() as s:  # each value in the form it had: records and raw answers still compressed
        forms = {(c.label, v[:2]) for c in rotation.COLUMNS for v in s.scalars(select(getattr(c.model, c.name)))
                 if v is not None}
    assert {label for label, form in forms if form == "v3"} == {"household_records.content_enc",
                                                                "raw_responses.body_enc"}
    assert {form for _, form in forms} == {"v2", "v3"}
    rotation.retire(old)
    assert old not in keyring().enc_keys
    with pytest.raises(rotation.KeyInUse):
        rotation.retire(new)
    with session() as s:
        assert verify(s, keyring().public_key).intact  # published records still match what the ledger vouches for
        make_checkpoint(s, keyring().signing_key)
    kinds = _key_events()
    assert kinds.count("keys.rotated") >= rotated_before + 1 and kinds.count("keys.retired") == 1


def test_a_published_record_may_be_re_encrypted_but_not_changed(home):
    with session() as s:
        rec = s.scalars(select(HouseholdRecord).limit(1)).first()
        rid = rec.id
    with pytest.raises(Exception) as err:
        with session() as s:
            s.execute(text("UPDATE household_records SET content_sha256 = 'x' WHERE id = :i"), {"i": rid})
    assert "immutable" in str(err.value)
    with pytest.raises(Exception):
        with session() as s:
            s.execute(text("DELETE FROM household_records WHERE id = :i"), {"i": rid})
    content = load_record(home[0].household_ref)[1]
    rotation.rotate()
    assert load_record(home[0].household_ref)[1] == content
    with session() as s:
        assert s.get(Request, home[0].request_id).status == "published"


def test_every_encrypted_column_of_the_store_is_rotated():
    """A column added later that holds AES-GCM values (``*_enc``) is re-encrypted by a rotation too."""
    from core.store import Base

    encrypted = {f"{t.name}.{c.name}" for t in Base.metadata.tables.values() for c in t.columns
                 if c.name.endswith("_enc")}
    assert encrypted == {c.label for c in rotation.COLUMNS}
