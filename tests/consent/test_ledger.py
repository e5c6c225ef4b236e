from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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


ID = "11010519491231002X"  # a valid identity number (check character X)


@pytest.mark.parametrize("payload", [
    {"who": ID}, {"who": ID.lower()}, {"note": f"身份证{ID}号"}, {"ids": ["1", ID]}, {ID: 1}, {"at": f"a,{ID}]"},
])
def test_an_identity_number_anywhere_in_a_payload_passes_the_quick_test_and_is_refused(payload):
    at = ledger._second(None)
    assert ledger._may_hold_id(ledger.entry_bytes("test.leak", at, payload))
    with pytest.raises(ledger.PersonalDataInLedger):
        ledger._checked_entry("test.leak", at, payload)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789Xx-_ a身份证１２３٣", max_size=60), st.sampled_from(["", ID, ID[:17] + "1"]),
       st.integers(0, 60))
def test_the_quick_test_says_no_only_where_the_regex_finds_no_identity_number(text, inserted, at):
    text = text[:at] + inserted + text[at:]
    data = ledger.entry_bytes("test.any", ledger._second(None), {"t": text})
    by_regex = any(ledger.is_valid_id(m) for m in ledger._ID_NUMBER.findall(data.decode("utf-8")))
    if by_regex:
        assert ledger._may_hold_id(data)
    if not ledger._may_hold_id(data):
        assert "0" * 17 not in "".join("0" if c in "0123456789" else " " for c in text)
