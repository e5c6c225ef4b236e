"""How the hub authenticates to an agency, and how an agency checks it (one definition for both sides).

Every request carries:
- the authorization reference (``X-Auth-Ref``), a fresh nonce (``X-Request-Nonce``) and the hub's Ed25519 signature
  over the reference, the nonce and the body's SHA-256 (``X-Auth-Sig``), so an agency can check with the hub's
  public key that the hub, and not someone replaying a reference, asked for exactly these persons under that
  authorization; the agency's signed answer names the nonce (connectors.signing), so the hub takes no answer
  meant for another request;
- in a batch exchange (批量核对: persons of many households in one call, each with the reference of their own
  authorization, named in the body beside their ID number), ``X-Auth-Ref`` is ``batch:`` and the SHA-256 of every
  reference in the call in order (``batch_ref``): the hub's signature covers each reference by name, and an agency
  refuses a call whose body names other references than the signed ones;
- the agency's own credential: an API key (``X-Api-Key``) or an HMAC-SHA256 request signature
  (``X-Timestamp``, ``X-Signature`` over method, path, timestamp and the body's SHA-256).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAX_CLOCK_SKEW_S = 300
BATCH = "batch:"  # X-Auth-Ref of a batch exchange: BATCH + SHA-256 of the persons' references


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _auth_message(auth_ref: str, nonce: str, body: bytes) -> bytes:
    return f"{auth_ref}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()


def _hmac_message(method: str, path: str, timestamp: str, body: bytes) -> bytes:
    return f"{method.upper()}\n{path}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()


def batch_ref(refs: list[str]) -> str:
    """The ``X-Auth-Ref`` of a batch exchange naming ``refs`` (one per person, in the order of the body)."""
    return BATCH + hashlib.sha256("\n".join(refs).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Credential:
    """An agency's credential as the hub holds it: ``api_key`` or ``hmac``, and the secret."""

    scheme: str
    secret: str

    def __repr__(self) -> str:  # never print the secret
        return f"Credential(scheme={self.scheme!r}, secret=***)"


def request_headers(*, method: str, path: str, body: bytes, auth_ref: str, credential: Credential,
                    signing_key: Ed25519PrivateKey, now: float | None = None, nonce: str | None = None) -> dict[str, str]:
    """The headers of one attempt at a request (``nonce``: the attempt's, drawn when not given)."""
    nonce = nonce or _b64e(os.urandom(16))
    headers = {"X-Auth-Ref": auth_ref, "X-Request-Nonce": nonce,
               "X-Auth-Sig": _b64e(signing_key.sign(_auth_message(auth_ref, nonce, body)))}
    if credential.scheme == "api_key":
        headers["X-Api-Key"] = credential.secret
    elif credential.scheme == "hmac":
        ts = str(int(now if now is not None else time.time()))
        mac = hmac.new(credential.secret.encode(), _hmac_message(method, path, ts, body), hashlib.sha256)
        headers.update({"X-Timestamp": ts, "X-Signature": mac.hexdigest()})
    else:
        raise ValueError(f"unknown credential scheme {credential.scheme!r}")
    return headers


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of a header's value (any text: compare_digest refuses non-ASCII str) with ours."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def check_request(headers, *, method: str, path: str, body: bytes, credential: Credential,
                  hub_key: Ed25519PublicKey, now: float | None = None, refs: list[str] | None = None) -> str | None:
    """What an agency checks; None when the request is acceptable, else the reason it is refused. ``refs``: the
    per-person references the body names (a batch exchange), None when it names none."""
    if credential.scheme == "api_key":
        if not _same(headers.get("X-Api-Key") or "", credential.secret):
            return "bad credential"
    else:
        ts = headers.get("X-Timestamp") or ""
        if not (ts.isascii() and ts.isdigit() and len(ts) <= 12) or \
                abs(int(ts) - (now if now is not None else time.time())) > MAX_CLOCK_SKEW_S:  # "²" is a digit too
            return "bad timestamp"
        mac = hmac.new(credential.secret.encode(), _hmac_message(method, path, ts, body), hashlib.sha256).hexdigest()
        if not _same(headers.get("X-Signature") or "", mac):
            return "bad request signature"
    ref, sig = headers.get("X-Auth-Ref") or "", headers.get("X-Auth-Sig") or ""
    nonce = headers.get("X-Request-Nonce") or ""
    if not ref:
        return "authorization reference missing"
    if not (nonce.isascii() and 0 < len(nonce) <= 64):
        return "request nonce missing"
    try:
        hub_key.verify(_b64d(sig), _auth_message(ref, nonce, body))
    except (InvalidSignature, ValueError):
        return "authorization reference not signed by the hub"
    if ref.startswith(BATCH) != (refs is not None):
        return "authorization references missing" if refs is None else "a batch needs the batch reference"
    if refs is not None and not _same(ref, batch_ref(refs)):
        return "authorization references not signed by the hub"
    return None


# -- the credentials file (generated by `hub init`, shared with the simulated agencies) ----------

def credentials_path(home: Path) -> Path:
    return home / "keys" / "agencies.json"


def create_credentials(path: Path, schemes: dict[str, str]) -> bool:
    """Generate a secret per agency (missing ones only); return True when the file changed."""
    doc = json.loads(path.read_text()) if path.exists() else {}
    added = {k: {"scheme": s, "secret": secrets.token_urlsafe(32)} for k, s in schemes.items() if k not in doc}
    if not added:
        return False
    doc.update(added)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, path)
    return True


def load_credentials(path: Path) -> dict[str, Credential]:
    if not path.exists():
        raise FileNotFoundError(f"no agency credentials at {path}; run `hub init`")
    return {k: Credential(v["scheme"], v["secret"]) for k, v in json.loads(path.read_text()).items()}
