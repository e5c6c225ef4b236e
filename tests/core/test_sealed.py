"""Field encryption's forms: ``v2`` (a text), ``v3`` (a text or bytes, zlib-compressed before sealing: the store's
large values) and ``v1`` (before key ids were bound). Each form decrypts only in its own place and under its own
key id, key rotation keeps each value in its form, and bytes sealed before ``v3`` (as their base64 text) still
read back as bytes."""

from __future__ import annotations

import base64
import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings, strategies as st

from core.crypto import DecryptionFailed, Keyring, b64e, key_id

PLACE = "household_records.content_enc:hh_1:2"
RECORD = json.dumps({"facts": {"deposits": [{"bank": "某某银行", "balance": 1200.5 + i} for i in range(200)]}},
                    ensure_ascii=False)


def _keys(active: str = "k1", *kids: str) -> Keyring:
    enc = {kid: AESGCM.generate_key(bit_length=256) for kid in {active, *kids}}
    return Keyring(active, enc, os.urandom(32), Ed25519PrivateKey.generate())


def test_a_compressed_value_is_v3_a_fraction_of_the_plain_one_and_reads_back_as_the_same_text():
    keys = _keys()
    plain, packed = keys.encrypt(RECORD, aad=PLACE), keys.encrypt_bytes(RECORD.encode(), aad=PLACE)
    assert plain.startswith("v2.k1.") and packed.startswith("v3.k1.") and key_id(packed) == "k1"
    assert len(packed) * 4 < len(plain)
    assert keys.decrypt(packed, aad=PLACE) == keys.decrypt(plain, aad=PLACE) == RECORD
    assert keys.decrypt_bytes(packed, aad=PLACE) == RECORD.encode()


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_sealed_read_back_the_same(data):
    keys = _keys()
    assert keys.decrypt_bytes(keys.encrypt_bytes(data, aad=PLACE), aad=PLACE) == data


def test_bytes_sealed_before_v3_as_their_base64_text_still_read_back_as_bytes():
    keys, body = _keys(), b"\xff\xfe not UTF-8 \x00" * 50
    legacy = keys.encrypt(base64.b64encode(body).decode("ascii"), aad=PLACE)
    assert legacy.startswith("v2.") and keys.decrypt_bytes(legacy, aad=PLACE) == body


def test_a_v3_value_elsewhere_relabelled_altered_or_not_text_fails_with_a_message_naming_only_its_place():
    keys = _keys("k1", "k2")
    token = keys.encrypt_bytes(RECORD.encode(), aad=PLACE)
    version, kid, nonce, ct = token.split(".")
    body = b"\xff\xfe not UTF-8"
    bad = {
        "another row": (token, "household_records.content_enc:hh_1:3"),
        "another key id in its label": (".".join([version, "k2", nonce, ct]), PLACE),
        "read as v2": (".".join(["v2", kid, nonce, ct]), PLACE),
        "a changed ciphertext": (".".join([version, kid, nonce, ct[:-4] + ("AAAA" if ct[-4:] != "AAAA" else "BBBB")]),
                                 PLACE),
        "bytes that are no text": (keys.encrypt_bytes(body, aad=PLACE), PLACE),
        "a v4": (".".join(["v4", kid, nonce, ct]), PLACE),
    }
    for what, (value, place) in bad.items():
        with pytest.raises(DecryptionFailed) as caught:
            keys.decrypt(value, aad=place)
        assert str(caught.value) == f"cannot decrypt value bound to {place!r}", what
        assert "某某" not in str(caught.value) and ct[:20] not in str(caught.value)
    # nor is a v2 value read as v3: the form is bound with the place and the key id
    plain = keys.encrypt(RECORD, aad=PLACE).split(".")
    with pytest.raises(DecryptionFailed):
        keys.decrypt(".".join(["v3", *plain[1:]]), aad=PLACE)


def test_a_sealed_value_reads_the_same_under_the_new_key_and_keeps_its_form():
    old = _keys("k1", "k2")
    new = Keyring("k2", old.enc_keys, old.pseudonym_key, old.signing_key)
    body = b"\x00\xff raw answer \xfe" * 20
    nonce = os.urandom(12)
    v1 = f"v1.k1.{b64e(nonce)}.{b64e(AESGCM(old.enc_keys['k1']).encrypt(nonce, b'an old value', PLACE.encode()))}"
    values = {"v1": v1, "v2": old.encrypt("a text", aad=PLACE), "v3": old.encrypt_bytes(RECORD.encode(), aad=PLACE),
              "bytes": old.encrypt_bytes(body, aad=PLACE)}
    moved = {what: new.reseal(v, aad=PLACE) for what, v in values.items()}
    assert {what: v[:6] for what, v in moved.items()} == {"v1": "v2.k2.", "v2": "v2.k2.", "v3": "v3.k2.",
                                                           "bytes": "v3.k2."}
    assert new.decrypt(moved["v1"], aad=PLACE) == old.decrypt(v1, aad=PLACE) == "an old value"
    assert new.decrypt(moved["v2"], aad=PLACE) == "a text" and new.decrypt(moved["v3"], aad=PLACE) == RECORD
    assert new.decrypt_bytes(moved["bytes"], aad=PLACE) == body
    with pytest.raises(DecryptionFailed):
        new.reseal(values["v3"], aad="another place")
