"""Signed checkpoints of the ledger's Merkle tree: C2SP tlog-checkpoint bodies in C2SP signed notes (Ed25519).

A checkpoint body is exactly three lines, `<origin>\\n<size>\\n<base64 root hash>\\n` (no extension lines).
A signed note is that text, a blank line, then signature lines `— <key name> <base64(key ID || signature)>\\n`
(U+2014 EM DASH, space), where key ID = SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4] and the
Ed25519 signature covers the text including its final newline. Keys are exchanged as the verifier key
`<name>+<8 hex key ID>+<base64(0x01 || public key)>` (golang.org/x/mod/sumdb/note format).

Opening a note is strict: UTF-8 without control characters other than newline, canonical base64 everywhere,
every signature line well formed; lines for other keys are ignored, every line for the given key must
verify, and the verified text must be a well-formed checkpoint. Error messages never echo note content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

ALG_ED25519 = 0x01
MAX_SIGNATURES = 100  # as golang.org/x/mod/sumdb/note; the spec asks verifiers to accept at least 16
SIG_PREFIX = "\u2014 ".encode()
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class CheckpointError(ValueError):
    """A signed checkpoint could not be opened, or a key or name is unusable."""


class MalformedNoteError(CheckpointError):
    """The note, a signature line or the checkpoint body does not have the required form."""


class UnknownKeyError(CheckpointError):
    """The note carries no signature line for the given key (name and key ID)."""


class SignatureError(CheckpointError):
    """A signature line for the given key does not verify over the note text."""


class KeyFormatError(CheckpointError):
    """A key name, verifier key or signer key string is malformed, or its key ID does not match."""


def _b64decode(s: str, error: type[CheckpointError], what: str) -> bytes:
    """Standard base64, canonical only (re-encoding gives back `s`), so one value has one spelling."""
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise error(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != s:
        raise error(f"{what} is not canonical base64")
    return raw


def _raw_public(key: Ed25519PublicKey | bytes) -> bytes:
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw) if isinstance(key, Ed25519PublicKey) else bytes(key)
    if len(raw) != 32:
        raise KeyFormatError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return raw


def check_name(name: str) -> str:
    """Key names: non-empty UTF-8 without Unicode spaces, plus signs or control characters."""
    if not isinstance(name, str) or not name or "+" in name or any(c.isspace() or c < " " for c in name):
        raise KeyFormatError("key names must be non-empty, without spaces, '+' or control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise KeyFormatError("key names must be valid UTF-8") from None
    return name


def key_hash(name: str, public_key: Ed25519PublicKey | bytes) -> bytes:
    """The 4-byte key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    raw = _raw_public(public_key)
    return hashlib.sha256(check_name(name).encode() + b"\n" + bytes([ALG_ED25519]) + raw).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    name: str
    key_hash: bytes  # 4 bytes
    public_key: bytes  # 32 bytes, raw Ed25519

    def __str__(self) -> str:
        return verifier_key(self.name, self.public_key)


def verifier_key(name: str, public_key: Ed25519PublicKey | bytes) -> str:
    raw = _raw_public(public_key)
    encoded = base64.b64encode(bytes([ALG_ED25519]) + raw).decode()
    return f"{name}+{key_hash(name, raw).hex()}+{encoded}"


def _parse_key(name: str, rest: str) -> tuple[bytes, bytes]:
    check_name(name)
    hash16, _, key64 = rest.partition("+")
    if not re.fullmatch(r"[0-9a-fA-F]{8}", hash16):
        raise KeyFormatError("the key ID must be 8 hexadecimal digits")
    key = _b64decode(key64, KeyFormatError, "the key")
    if len(key) != 33 or key[0] != ALG_ED25519:
        raise KeyFormatError("the key must be the Ed25519 type byte 0x01 and 32 key bytes")
    return bytes.fromhex(hash16), key[1:]


def parse_verifier_key(s: str) -> VerifierKey:
    name, _, rest = s.partition("+")
    kid, raw = _parse_key(name, rest)
    if kid != key_hash(name, raw):
        raise KeyFormatError("the key ID does not match the name and public key")
    return VerifierKey(name, kid, raw)


def signer_key(name: str, private_key: Ed25519PrivateKey) -> str:
    """`PRIVATE+KEY+<name>+<key ID>+<base64(0x01 || seed)>`: a secret, as golang.org/x/mod/sumdb/note."""
    seed = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    kid = key_hash(name, private_key.public_key())
    return f"PRIVATE+KEY+{name}+{kid.hex()}+{base64.b64encode(bytes([ALG_ED25519]) + seed).decode()}"


def parse_signer_key(s: str) -> tuple[str, Ed25519PrivateKey]:
    if not s.startswith("PRIVATE+KEY+"):
        raise KeyFormatError("signer keys begin with PRIVATE+KEY+")
    name, _, rest = s[len("PRIVATE+KEY+"):].partition("+")
    kid, seed = _parse_key(name, rest)
    private_key = Ed25519PrivateKey.from_private_bytes(seed)
    if kid != key_hash(name, private_key.public_key()):
        raise KeyFormatError("the key ID does not match the name and public key")
    return name, private_key


# ------------------------------------------------------------------------------------------------ notes


def _check_text(text: bytes) -> str:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedNoteError("a note must be valid UTF-8") from None
    if _CONTROL.search(decoded):
        raise MalformedNoteError("a note must not contain control characters other than newline")
    return decoded


def sign_note(text: bytes, name: str, private_key: Ed25519PrivateKey) -> bytes:
    """Text (ending in a newline), a blank line, one Ed25519 signature line."""
    _check_text(text)
    if not text.endswith(b"\n"):
        raise MalformedNoteError("a note text must end with a newline")
    sig = key_hash(name, private_key.public_key()) + private_key.sign(text)
    return text + b"\n" + SIG_PREFIX + f"{name} {base64.b64encode(sig).decode()}\n".encode()


def open_note(note: bytes, key: str | VerifierKey) -> bytes:
    """The text of `note`, once every signature line for `key` verifies over it (and at least one exists)."""
    vk = key if isinstance(key, VerifierKey) else parse_verifier_key(key)
    if not isinstance(note, bytes):
        raise MalformedNoteError("a note must be bytes")
    _check_text(note)
    split = note.rfind(b"\n\n")  # the text is separated from the signatures by the last blank line
    if split < 0:
        raise MalformedNoteError("a note needs a blank line before its signatures")
    text, block = note[: split + 1], note[split + 2:]
    if not block.endswith(b"\n"):
        raise MalformedNoteError("a note must end with a signature line and a newline")
    lines = block[:-1].split(b"\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"a note may carry at most {MAX_SIGNATURES} signatures")
    mine = []
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise MalformedNoteError("signature lines begin with an em dash and a space")
        name, _, b64 = line[len(SIG_PREFIX):].decode().partition(" ")
        try:
            check_name(name)
        except KeyFormatError:
            raise MalformedNoteError("a signature line has an invalid key name") from None
        sig = _b64decode(b64, MalformedNoteError, "a signature")
        if len(sig) < 5:
            raise MalformedNoteError("a signature must hold a key ID and signature bytes")
        if name == vk.name and sig[:4] == vk.key_hash:
            mine.append(sig[4:])
    if not mine:
        raise UnknownKeyError(f"no signature by {vk.name}+{vk.key_hash.hex()}")
    public_key = Ed25519PublicKey.from_public_bytes(vk.public_key)
    for sig in mine:
        try:
            public_key.verify(sig, text)
        except InvalidSignature:
            raise SignatureError(f"invalid signature by {vk.name}+{vk.key_hash.hex()}") from None
    return text


# ------------------------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or re.search(r"[\x00-\x1f]", self.origin):
            raise ValueError("the origin must be a non-empty line without control characters")
        if type(self.size) is not int or not 0 <= self.size < 2**64:
            raise ValueError("the size must be an integer in [0, 2**64)")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise ValueError("the root must be 32 bytes")

    def body(self) -> bytes:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n".encode()

    @classmethod
    def parse(cls, body: bytes) -> Checkpoint:
        """Exactly `origin\\nsize\\nroot\\n`: decimal size without leading zeros, canonical base64 root."""
        lines = _check_text(body).split("\n")
        if len(lines) != 4 or lines[3] != "":
            raise MalformedNoteError("a checkpoint is exactly three lines, each ending in a newline")
        origin, size, root64 = lines[:3]
        if not origin:
            raise MalformedNoteError("the checkpoint origin is empty")
        if not _SIZE.fullmatch(size) or int(size) >= 2**64:
            raise MalformedNoteError("the checkpoint size is not a decimal below 2**64 without leading zeros")
        root = _b64decode(root64, MalformedNoteError, "the checkpoint root hash")
        if len(root) != 32:
            raise MalformedNoteError("the checkpoint root hash is not 32 bytes")
        return cls(origin, int(size), root)


def sign_checkpoint(cp: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> bytes:
    return sign_note(cp.body(), name, private_key)


def open_checkpoint(note: bytes, verifier_key: str | VerifierKey) -> Checkpoint:
    """The checkpoint in `note`, signed by `verifier_key`: signature first, then the strict body form."""
    return Checkpoint.parse(open_note(note, verifier_key))
