from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from consent import ledger
from core.store import LedgerEvent, session


def test_each_event_stores_its_rfc6962_leaf_hash():
    with session() as s:
        e = ledger.append(s, "test.event", {"request_id": "r1", "n": 1})
        seq = e.seq
    with session() as s:
        stored = s.get(LedgerEvent, seq)
        data = ledger.entry_bytes(stored.kind, stored.recorded_at, stored.payload)
        assert stored.leaf_sha256 == hashlib.sha256(b"\x00" + data).hexdigest()


def test_an_identity_number_in_a_payload_is_refused_and_nothing_is_written():
    with pytest.raises(ledger.PersonalDataInLedger) as info:
        with session() as s:
            ledger.append(s, "test.leak", {"who": "11010519491231002X"})
    assert "11010519491231002X" not in str(info.value)
    with session() as s:
        assert s.scalars(select(LedgerEvent).where(LedgerEvent.kind == "test.leak")).first() is None


def test_hex_digests_are_not_mistaken_for_identity_numbers():
    payload = {"sha": "a" + "1" * 40 + "b", "p": "p_123456789012345678", "n": "110105194912310021"}  # bad check char
    with session() as s:
        seq = ledger.append(s, "test.hash", payload).seq
    with session() as s:
        assert s.get(LedgerEvent, seq).payload == payload
