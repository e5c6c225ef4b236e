"""consent.checkpoint: C2SP tlog-checkpoint bodies in C2SP signed notes, Ed25519."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from consent.checkpoint import (
    Checkpoint,
    CheckpointError,
    KeyFormatError,
    MalformedNoteError,
    SignatureError,
    UnknownKeyError,
    VerifierKey,
    key_hash,
    open_checkpoint,
    open_note,
    parse_signer_key,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    signer_key,
    verifier_key,
)
from consent.merkle import EMPTY_ROOT

ORIGIN = "hub.example/ledger"
NAME = "hub.example/ledger"
ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
EM_DASH = "\u2014".encode()


def _key(seed_byte: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed_byte]) * 32)


KEY, OTHER = _key(1), _key(2)
VKEY = verifier_key(NAME, KEY.public_key())
CP = Checkpoint(ORIGIN, 8, ROOT)


# ---------------------------------------------------------------------------------------- known answers


def test_rfc8032_test_1_with_the_cryptography_library():
    """RFC 8032 section 7.1, TEST 1 (empty message)."""
    secret = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    signature = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    key = Ed25519PrivateKey.from_private_bytes(secret)
    assert key.public_key().public_bytes_raw() == public
    assert key.sign(b"") == signature
    Ed25519PublicKey.from_public_bytes(public).verify(signature, b"")


def test_key_hash_is_the_spec_formula():
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    want = hashlib.sha256(b"example.com/log" + b"\x0a" + b"\x01" + public).digest()[:4]
    assert key_hash("example.com/log", public) == want
    assert key_hash("example.com/log", Ed25519PublicKey.from_public_bytes(public)) == want
    vk = verifier_key("example.com/log", public)
    assert vk == "example.com/log+" + want.hex() + "+" + base64.b64encode(b"\x01" + public).decode()
    assert parse_verifier_key(vk) == VerifierKey("example.com/log", want, public)


# The example in the package documentation of golang.org/x/mod/sumdb/note (note.go) and its TestNewVerifier.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = GO_TEXT + b"\n" + "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n".encode()


def test_go_sumdb_note_example():
    name, key = parse_signer_key(GO_SKEY)
    assert name == "PeterNeumann"
    assert key_hash(name, key.public_key()).hex() == "c74f20a3"
    assert verifier_key(name, key.public_key()) == GO_VKEY == str(parse_verifier_key(GO_VKEY))
    assert signer_key(name, key) == GO_SKEY
    assert sign_note(GO_TEXT, name, key) == GO_NOTE  # Ed25519 is deterministic
    assert open_note(GO_NOTE, GO_VKEY) == GO_TEXT


def test_verifier_key_manglings_are_rejected():
    """As TestNewVerifier in golang.org/x/mod/sumdb/note: every proper substring, every byte + 1."""
    b = GO_VKEY.encode()
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(KeyFormatError):
                    parse_verifier_key(b[i:j].decode())
    for i in range(len(b)):
        with pytest.raises(KeyFormatError):
            parse_verifier_key((b[:i] + bytes([b[i] + 1]) + b[i + 1:]).decode())
    with pytest.raises(KeyFormatError):  # unknown algorithm, with adjusted key hash (from the Go test)
        parse_verifier_key("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    with pytest.raises(KeyFormatError):  # wrong length key, with adjusted key hash (from the Go test)
        parse_verifier_key("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    for bad in ("", "+", "a b+c74f20a3+AAAA", GO_SKEY, "PRIVATE+KEY+" + GO_VKEY):
        with pytest.raises(KeyFormatError):
            parse_verifier_key(bad)
    for bad in (GO_VKEY, GO_SKEY.replace("c74f20a3", "c74f20a4"), GO_SKEY[:-1]):
        with pytest.raises(KeyFormatError):
            parse_signer_key(bad)


# ---------------------------------------------------------------------------------------- round trips


def test_body_form():
    assert CP.body() == b"hub.example/ledger\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    assert Checkpoint.parse(CP.body()) == CP


@pytest.mark.parametrize("cp", [CP, Checkpoint(ORIGIN, 0, EMPTY_ROOT), Checkpoint("o", 2**64 - 1, ROOT)])
def test_round_trip(cp):
    note = sign_checkpoint(cp, NAME, KEY)
    assert note.startswith(cp.body() + b"\n" + EM_DASH + b" " + NAME.encode() + b" ")
    assert note.endswith(b"\n") and note.count(b"\n") == 5
    sig = base64.b64decode(note.split(b" ")[-1])
    assert sig[:4] == key_hash(NAME, KEY.public_key()) and len(sig) == 68
    assert open_checkpoint(note, VKEY) == cp
    assert open_checkpoint(note, parse_verifier_key(VKEY)) == cp


def test_every_single_byte_change_fails():
    note = sign_checkpoint(CP, NAME, KEY)
    assert open_checkpoint(note, VKEY) == CP
    for i in range(len(note)):
        for new in {note[i] ^ 0x01, note[i] ^ 0x20, ord("A"), ord("\n"), ord(" ")} - {note[i]}:
            with pytest.raises(CheckpointError):
                open_checkpoint(note[:i] + bytes([new]) + note[i + 1:], VKEY)
        with pytest.raises(CheckpointError):
            open_checkpoint(note[:i] + note[i + 1:], VKEY)  # deleted
        with pytest.raises(CheckpointError):
            open_checkpoint(note[:i] + b"0" + note[i:], VKEY)  # inserted


def test_body_changes_fail_the_signature():
    note = sign_checkpoint(CP, NAME, KEY)
    body = CP.body()
    for i in range(len(body) - 1):
        if body[i:i + 1] != b"\n":
            with pytest.raises(SignatureError):
                open_checkpoint(note[:i] + bytes([body[i] ^ 0x01]) + note[i + 1:], VKEY)


def test_signature_by_another_key_fails():
    with pytest.raises(UnknownKeyError):
        open_checkpoint(sign_checkpoint(CP, NAME, OTHER), VKEY)  # same name, other key ID
    with pytest.raises(UnknownKeyError):
        open_checkpoint(sign_checkpoint(CP, "other.example/log", KEY), VKEY)  # same key, other name
    # A line claiming our name and key ID, signed by another key.
    forged = key_hash(NAME, KEY.public_key()) + OTHER.sign(CP.body())
    note = CP.body() + b"\n" + EM_DASH + f" {NAME} {base64.b64encode(forged).decode()}\n".encode()
    with pytest.raises(SignatureError):
        open_checkpoint(note, VKEY)


def test_unknown_signatures_are_ignored_and_every_known_one_must_verify():
    mine = sign_checkpoint(CP, NAME, KEY)
    body, my_line = mine.split(b"\n\n")
    theirs = sign_checkpoint(CP, "witness.example/w1", OTHER).split(b"\n\n")[1]
    for note in (body + b"\n\n" + theirs + my_line, body + b"\n\n" + my_line + theirs):
        assert open_checkpoint(note, VKEY) == CP
    with pytest.raises(UnknownKeyError):
        open_checkpoint(body + b"\n\n" + theirs, VKEY)
    bad = sign_checkpoint(Checkpoint(ORIGIN, 9, ROOT), NAME, KEY).split(b"\n\n")[1]  # ours, other text
    for note in (body + b"\n\n" + my_line + bad, body + b"\n\n" + bad + my_line):
        with pytest.raises(SignatureError):
            open_checkpoint(note, VKEY)


def test_the_last_blank_line_separates_text_and_signatures():
    for text in (b"a\n\nb\n", b"a\n\n", b"\n", b"a\n\n\n\nb\n"):
        assert open_note(sign_note(text, NAME, KEY), VKEY) == text
    # Our signature line pushed into the text by a later blank line no longer counts as a signature.
    mine = sign_checkpoint(CP, NAME, KEY)
    theirs = sign_checkpoint(CP, "witness.example/w1", OTHER).split(b"\n\n")[1]
    with pytest.raises(UnknownKeyError):
        open_checkpoint(mine + b"\n" + theirs, VKEY)


# ---------------------------------------------------------------------------------------- malformed


def _signed(text: bytes) -> bytes:
    """A note signed over `text` exactly, so only the checkpoint form can be wrong."""
    return sign_note(text, NAME, KEY)


ROOT64 = base64.b64encode(ROOT)


@pytest.mark.parametrize("text", [
    b"o\n8\n" + ROOT64 + b"\nextension line\n",  # trailing garbage (extension lines are not accepted)
    b"o\n8\n" + ROOT64 + b" \n",
    b"o\n08\n" + ROOT64 + b"\n",  # leading zero
    b"o\n-1\n" + ROOT64 + b"\n",
    b"o\n+8\n" + ROOT64 + b"\n",
    b"o\n 8\n" + ROOT64 + b"\n",
    b"o\n8.0\n" + ROOT64 + b"\n",
    b"o\n\xd9\xa8\n" + ROOT64 + b"\n",  # ARABIC-INDIC DIGIT EIGHT
    b"o\n18446744073709551616\n" + ROOT64 + b"\n",  # 2**64
    b"o\n\n" + ROOT64 + b"\n",
    b"o\neight\n" + ROOT64 + b"\n",
    b"o\n8\n" + ROOT64[:-2] + b"\n",  # bad base64
    b"o\n8\n" + ROOT64.replace(b"+", b"-") + b"\n",  # URL alphabet
    b"o\n8\n" + ROOT64[:-2] + b"h=\n",  # non-canonical: stray bits in the last character
    b"o\n8\n" + base64.b64encode(ROOT[:31]) + b"\n",  # 31 bytes
    b"o\n8\n" + base64.b64encode(ROOT + b"\0") + b"\n",  # 33 bytes
    b"o\n8\n",
    b"\n8\n" + ROOT64 + b"\n",  # empty origin
    b"o\n8\n" + ROOT64 + b"\n\n",
    b"8\n" + ROOT64 + b"\n",
])
def test_signed_but_malformed_checkpoints(text):
    with pytest.raises(MalformedNoteError):
        open_checkpoint(_signed(text), VKEY)


def test_malformed_notes():
    good = sign_checkpoint(CP, NAME, KEY)
    body, line = good.split(b"\n\n")
    sig64 = line.split(b" ")[-1]
    bad_notes = {
        "missing blank line": body + b"\n" + line,
        "two signature blocks glued": body + line,
        "no signature lines": body + b"\n\n",
        "trailing garbage": good + b"garbage",
        "trailing garbage line": good + b"garbage\n",
        "trailing blank line": good + b"\n",
        "no final newline": good[:-1],
        "CRLF": good.replace(b"\n", b"\r\n"),
        "ASCII dash": body + b"\n\n" + line.replace(EM_DASH, b"-"),
        "two spaces after dash": body + b"\n\n" + line.replace(EM_DASH + b" ", EM_DASH + b"  "),
        "no signature": body + b"\n\n" + EM_DASH + b" " + NAME.encode() + b"\n",
        "empty name": body + b"\n\n" + EM_DASH + b"  " + sig64,
        "name with plus": body + b"\n\n" + line.replace(b"ledger", b"led+ger"),
        "bad base64 signature": body + b"\n\n" + line.replace(sig64, sig64[:-2] + b"!="),
        "signature without padding": body + b"\n\n" + line.replace(sig64, sig64.rstrip(b"=\n") + b"\n"),
        "non-canonical signature": body + b"\n\n" + line.replace(sig64, sig64[:-3] + bytes([sig64[-3] + 1]) + b"=\n"),
        "short signature": body + b"\n\n" + EM_DASH + b" " + NAME.encode() + b" AAAAAA==\n",
        "tab": good.replace(b"\n8\n", b"\n8\t\n"),
        "NUL": good.replace(b"\n8\n", b"\n8\0\n"),
        "invalid UTF-8": good.replace(b"hub.", b"hub\xff"),
        "too many signatures": body + b"\n\n" + line * 101,
    }
    for what, note in bad_notes.items():
        with pytest.raises(MalformedNoteError):
            open_checkpoint(note, VKEY)
            pytest.fail(what)
    with pytest.raises(MalformedNoteError):
        open_checkpoint(good.decode(), VKEY)  # type: ignore[arg-type]


def test_errors_do_not_echo_note_content():
    secret = b"SECRET-CONTENT"
    for note in (sign_checkpoint(CP, NAME, KEY) + secret,
                 _signed(b"o\n8\n" + ROOT64 + b"\n" + secret + b"\n"),
                 CP.body() + b"\n" + EM_DASH + b" " + secret + b" AAAAAAAA\n"):
        with pytest.raises(CheckpointError) as e:
            open_checkpoint(note, VKEY)
        assert "SECRET" not in str(e.value)


def test_signing_and_construction_preconditions():
    for bad in ("", "a b", "a+b", "a\tb", "a\u2003b"):
        with pytest.raises(KeyFormatError):
            sign_checkpoint(CP, bad, KEY)
        with pytest.raises(KeyFormatError):
            verifier_key(bad, KEY.public_key())
    with pytest.raises(MalformedNoteError):
        sign_note(b"no final newline", NAME, KEY)
    with pytest.raises(MalformedNoteError):
        sign_note(b"bell \x07\n", NAME, KEY)
    with pytest.raises(KeyFormatError):
        verifier_key(NAME, b"\0" * 31)
    for args in (("", 1, ROOT), ("a\nb", 1, ROOT), (ORIGIN, -1, ROOT), (ORIGIN, 2**64, ROOT), (ORIGIN, True, ROOT),
                 (ORIGIN, 1, ROOT[:31]), (ORIGIN, 1, ROOT.hex())):
        with pytest.raises(ValueError):
            Checkpoint(*args)
    assert issubclass(CheckpointError, ValueError)
    for cls in (MalformedNoteError, UnknownKeyError, SignatureError, KeyFormatError):
        assert issubclass(cls, CheckpointError)
