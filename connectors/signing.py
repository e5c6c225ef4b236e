"""Signed answers: how an agency signs what it answers, and how the hub checks it (one definition for both sides).

A record is only as true as the answers it was built from, and a well-formed answer with one row cut out, an empty
body or an HTML error page served with 200 look like "fewer facts" unless the agency vouches for what it sent. So,
as exchange platforms do (X-Road signs and time-stamps every message), every answer carries:

- ``X-Answer-Manifest``: a compact JSON document (base64url) naming the source, the request it answers (the nonce
  the hub sent in ``X-Request-Nonce``, itself covered by the hub's request signature), the time of the answer, the
  page and number of pages, the SHA-256 of the exact body bytes, the number of rows per ID number as written in the
  body (``rows``) and the ID numbers the agency does not know (``not_found``);
- ``X-Answer-Key``: the id of the agency key that signed it;
- ``X-Answer-Signature``: Ed25519 over ``DOMAIN || manifest``.

The hub checks the signature, the source, the nonce, the time and the body's hash **before** it parses anything
(``verify_answer``: any failure is BAD_SIGNATURE), and the counts after (``count_mismatches``: COUNT_MISMATCH).
The manifest and signature are kept with the raw answer, so ``hub audit answer BATCH_ID`` re-verifies it later with
the agency's public key alone (``verify_answer(..., nonce=None, max_age=None)``).

Keys: ``hub init`` generates one Ed25519 key per simulated agency (``agency_answer_keys.json``, the simulator's,
private) and the hub's trust list (``agency_trust.json``: per source, every key id with its public key; a retired
key still verifies stored answers for auditors but no new answer). Rotation (``rotate_answer_key``) adds a new
key as the agency's active one and trusts it beside the old, so answers signed with either verify during the
change-over; ``retire_answer_key`` then stops trusting the old one for new answers.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DOMAIN = b"verification-hub/agency-answer/v1\n"
MAX_ANSWER_AGE_S = 300  # an answer signed longer ago (or further ahead) than this is an old one replayed
MANIFEST, SIGNATURE, KEY_ID, NONCE = "X-Answer-Manifest", "X-Answer-Signature", "X-Answer-Key", "X-Request-Nonce"


class BadSignature(ValueError):
    """An answer whose signature does not hold; ``why`` says which check failed (never any content)."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(f"answer signature: {why}")


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_nonce() -> str:
    """A request's nonce: the answer must name it, so an answer to another request (or an old one) is refused."""
    return b64e(os.urandom(16))


def row_counts(rows: Iterable[Mapping], id_field: str) -> dict[str, int]:
    """Rows per ID number as written (a row without one counts under "")."""
    counts = collections.Counter("" if r.get(id_field) is None else str(r.get(id_field)) for r in rows)
    return dict(counts)


@dataclass(frozen=True)
class Manifest:
    """What the agency vouches for, read from a verified answer."""

    source: str
    nonce: str
    time: int
    page: int
    pages: int
    sha256: str
    rows: dict[str, int]
    not_found: list[str]
    kid: str
    rejected: list[str] = ()  # a batch exchange's persons whose authorization reference the agency rejected


def sign_answer(key: Ed25519PrivateKey, kid: str, *, source: str, nonce: str, body: bytes, page: int, pages: int,
                rows: Mapping[str, int], not_found: list[str], now: float | None = None,
                rejected: list[str] = ()) -> dict[str, str]:
    """The headers that sign ``body`` as the answer of ``source`` to the request that sent ``nonce`` (``rejected``:
    the persons of a batch exchange whose reference the agency rejected)."""
    doc = {"v": 1, "source": source, "nonce": nonce, "time": int(now if now is not None else time.time()),
           "page": page, "pages": pages, "sha256": hashlib.sha256(body).hexdigest(),
           "rows": dict(sorted(rows.items())), "not_found": list(not_found),
           **({"rejected": list(rejected)} if rejected else {})}
    manifest = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return {MANIFEST: b64e(manifest), KEY_ID: kid, SIGNATURE: b64e(key.sign(DOMAIN + manifest))}


def signature_of(headers: Mapping[str, str]) -> dict | None:
    """The signature headers of an answer, as kept with its raw body (None when it carries none)."""
    found = {name: headers.get(name) for name in (MANIFEST, KEY_ID, SIGNATURE)}
    return found if all(found.values()) else None


def verify_answer(signed: Mapping[str, str] | None, body: bytes, *, source: str, trusted: Mapping[str, Ed25519PublicKey],
                  nonce: str | None, now: float | None = None, max_age: float | None = MAX_ANSWER_AGE_S) -> Manifest:
    """The manifest of an answer whose signature holds, else BadSignature.

    ``signed``: the answer's headers (or what ``signature_of`` kept); ``trusted``: key id -> public key of this
    source's agency; ``nonce``: the request's (None when re-verifying a stored answer, whose request is its batch);
    ``max_age``: the largest difference between the answer's time and ``now`` (None: not checked, for audits)."""
    signed = signed or {}
    manifest_b64, kid, sig_b64 = signed.get(MANIFEST), signed.get(KEY_ID), signed.get(SIGNATURE)
    if not (manifest_b64 and kid and sig_b64):
        raise BadSignature("missing")
    public = trusted.get(kid)
    if public is None:
        raise BadSignature("unknown key")
    try:
        public.verify(b64d(sig_b64), DOMAIN + b64d(manifest_b64))
    except (InvalidSignature, ValueError, TypeError):
        raise BadSignature("invalid") from None
    m = read_manifest(signed)
    if m.source != source:
        raise BadSignature("another source")
    if nonce is not None and m.nonce != nonce:
        raise BadSignature("another request")
    if max_age is not None and abs((now if now is not None else time.time()) - m.time) > max_age:
        raise BadSignature("too old")
    if hashlib.sha256(body).hexdigest() != m.sha256:
        raise BadSignature("body changed")
    if m.pages < 1 or not 1 <= m.page <= m.pages:
        raise BadSignature("malformed manifest")
    return m


def read_manifest(signed: Mapping[str, str]) -> Manifest:
    """The manifest of an answer, read without checking its signature (``verify_answer`` checks it first; a
    benchmark reads it alone to measure what the checking costs)."""
    try:
        doc = json.loads(b64d(signed[MANIFEST]))
        return Manifest(source=doc["source"], nonce=doc["nonce"], time=int(doc["time"]), page=int(doc["page"]),
                        pages=int(doc["pages"]), sha256=doc["sha256"],
                        rows={str(k): int(v) for k, v in doc["rows"].items()},
                        not_found=[str(i) for i in doc["not_found"]], kid=signed[KEY_ID],
                        rejected=[str(i) for i in doc.get("rejected", [])])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadSignature("malformed manifest") from None


def count_mismatches(manifest: Manifest, rows: Iterable[Mapping], id_field: str) -> set[str]:
    """The ID numbers (as written) whose rows read from the body differ in number from the signed counts."""
    got = row_counts(rows, id_field)
    return {k for k in set(got) | set(manifest.rows) if got.get(k, 0) != manifest.rows.get(k, 0)}


# -- the keys (generated by `hub init`) ------------------------------------------------------------------

def answer_keys_path(home: Path) -> Path:
    """The simulated agencies' private answer keys (the simulator reads it; the hub never needs it)."""
    return home / "keys" / "agency_answer_keys.json"


def trust_path(home: Path) -> Path:
    """The hub's trust list: per source, the agency's public answer keys."""
    return home / "keys" / "agency_trust.json"


def _write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(tmp, path)


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _new_key() -> tuple[str, str, str]:
    """(key id, private key, public key), base64url raw bytes; the id is the public key's hash prefix."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    private = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    return hashlib.sha256(public).hexdigest()[:16], b64e(private), b64e(public)


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _add_key(home: Path, source: str) -> str:
    kid, private, public = _new_key()
    keys, trust = _read(answer_keys_path(home)), _read(trust_path(home))
    entry = keys.setdefault(source, {"active": kid, "keys": {}})
    entry["keys"][kid] = private
    entry["active"] = kid
    trust.setdefault(source, {})[kid] = {"public": public, "added": _now_iso(), "retired": None}
    _write(answer_keys_path(home), keys)
    _write(trust_path(home), trust)
    return kid


def create_answer_keys(home: Path, sources: Iterable[str]) -> bool:
    """A key per agency (missing ones only), trusted by the hub; True when anything was created."""
    keys = _read(answer_keys_path(home))
    missing = [s for s in sources if s not in keys]
    for source in missing:
        _add_key(home, source)
    return bool(missing)


def rotate_answer_key(home: Path, source: str) -> str:
    """A new answer key for ``source``'s agency, made its active one and trusted beside the old ones (which verify
    answers until retired); returns its id."""
    if source not in _read(trust_path(home)):
        raise KeyError(f"no answer keys for {source!r}; run `hub init`")
    return _add_key(home, source)


def retire_answer_key(home: Path, source: str, kid: str) -> None:
    """Stop trusting ``kid`` for new answers of ``source`` (stored answers it signed still verify in audits) and
    drop it from the agency's keys. The agency's active key cannot be retired: rotate first."""
    keys, trust = _read(answer_keys_path(home)), _read(trust_path(home))
    if kid not in trust.get(source, {}):
        raise KeyError(f"{source}: no answer key {kid}")
    if keys.get(source, {}).get("active") == kid:
        raise ValueError(f"{source}: {kid} is the agency's active key; rotate first")
    trust[source][kid]["retired"] = trust[source][kid]["retired"] or _now_iso()
    keys.get(source, {}).get("keys", {}).pop(kid, None)
    _write(trust_path(home), trust)
    if keys:
        _write(answer_keys_path(home), keys)


def _public(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(b64d(text))


_TRUST_CACHE: dict[Path, tuple[float, dict]] = {}


def _trust_doc(home: Path) -> dict:
    """The trust list, read again when the file changes (a rotation takes effect without a restart)."""
    path = trust_path(home)
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise FileNotFoundError(f"no agency answer keys at {path}; run `hub init`") from None
    cached = _TRUST_CACHE.get(path)
    if cached is None or cached[0] != mtime:
        cached = (mtime, _read(path))
        _TRUST_CACHE[path] = cached
    return cached[1]


def trusted_keys(home: Path, source: str, *, retired: bool = False) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key of ``source``'s agency that verify new answers (with ``retired``: stored ones too)."""
    entries = _trust_doc(home).get(source, {})
    return {kid: _public(e["public"]) for kid, e in entries.items() if retired or not e.get("retired")}


def public_keys(home: Path, source: str) -> list[dict]:
    """The trust list of ``source`` as published (the agencies' index lists it for the demo)."""
    return [{"kid": kid, "public": e["public"], "retired": e.get("retired")}
            for kid, e in _trust_doc(home).get(source, {}).items()]


class AnswerKeys:
    """An agency's side: its active key, read again when the keys file changes (a rotation takes effect while the
    simulated agencies run)."""

    def __init__(self, path: Path, source: str):
        self.path, self.source = path, source
        self._mtime: int | None = None
        self._active: tuple[str, Ed25519PrivateKey] | None = None

    def active(self) -> tuple[str, Ed25519PrivateKey]:
        mtime = self.path.stat().st_mtime_ns
        if self._active is None or mtime != self._mtime:
            entry = _read(self.path)[self.source]
            kid = entry["active"]
            self._active = (kid, Ed25519PrivateKey.from_private_bytes(b64d(entry["keys"][kid])))
            self._mtime = mtime
        return self._active
