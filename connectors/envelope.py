"""The DCI message envelope (``signature``, ``header``, ``message``): building, signing, and checking what arrives.

Pure functions (no store, no network): the server (hub.dci.service) and the client side (connectors.dci_remote)
both use them.

Signature scheme (the string in ``signature``; after the spec's example, the signing string of HTTP Signatures as
Beckn and DCI gateways use it, but computed over the envelope, not over the HTTP body)::

    Signature: namespace="spdci", kidId="{sender_id}|{key_id}|ed25519", algorithm="ed25519",
               created="{unix seconds}", expires="{unix seconds}", headers="(created) (expires) digest",
               signature="{base64 of the Ed25519 signature of the signing string}"

    signing string = "(created): {created}\\n(expires): {expires}\\ndigest: BLAKE-512={base64 digest}"
    digest         = BLAKE2b-512 of the canonical JSON of {"header": header, "message": message}

Canonical JSON: keys sorted, no whitespace (separators "," and ":"), UTF-8 without escaping non-ASCII
(core.crypto.canonical_json); ``message`` is null when an envelope has none. ``key_id`` is the first 16 hex digits of
the SHA-256 of the raw 32-byte public key, so a receiver tells a key it does not know from a bad signature.
``created`` may be at most a minute ahead of the receiver's clock, ``expires`` not past, and a signature is valid at
most an hour.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from core.crypto import canonical_json
from schemas.codes import is_valid_id

VERSION = "1.0.0"
REG_TYPE = "ns:org:RegistryType:Social"
SIGNATURE_LIFETIME_S = 300  # what this hub gives its own signatures
MAX_SIGNATURE_LIFETIME_S = 3600
CLOCK_SKEW_S = 60  # how far ahead a sender's clock may be
MESSAGE_TS_WINDOW_S = 300  # a message's timestamp within five minutes of the receiver's clock
MAX_BODY_BYTES = 1 << 20

# the spec's Error.code values (communication-layer errors, answered with the acknowledgement or as HTTP errors)
ERROR_CODES = ("err.request.bad", "err.request.unauthorized", "err.request.forbidden", "err.request.not_found",
               "err.request.timeout", "err.version.not_supported", "err.request.too_many_requests",
               "err.sender_id.invalid", "err.sender_uri.invalid", "err.receiver_id.invalid", "err.signature.missing",
               "err.signature.invalid", "err.encryption.invalid", "err.service.unavailable")
# the spec's MsgHeaderStatusReasonCode values
HEADER_CODES = ("rjct.version.invalid", "rjct.message_id.duplicate", "rjct.message_ts.invalid", "rjct.action.invalid",
                "rjct.action.not_supported", "rjct.total_count.invalid", "rjct.total_count.limit_exceeded",
                "rjct.errors.too_many")
STATUSES = ("rcvd", "pdng", "succ", "rjct")

_SAFE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,98}$")
_ID_LIKE = re.compile(r"(?=(\d{17}[\dXx]))")
_PARAM = re.compile(r'\s*([A-Za-z]+)="([^"]*)"\s*(?:,|$)')


class DciError(Exception):
    """A message refused as a whole: ``code`` is the spec's Error code, ``header_code`` the header reason code
    (MsgHeaderStatusReasonCode) where one applies, ``status`` the HTTP status. The text never quotes the message."""

    def __init__(self, code: str, detail: str, *, status: int = 400, header_code: str | None = None):
        assert code in ERROR_CODES and (header_code is None or header_code in HEADER_CODES)
        self.code, self.detail, self.status, self.header_code = code, detail, status, header_code
        super().__init__(f"{code}: {detail}")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def timestamp(moment: dt.datetime | None = None) -> str:
    """ISO 8601 with the offset, to the second (the spec's date-time)."""
    return (moment or utcnow()).astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()


def parse_ts(value) -> dt.datetime | None:
    """An ISO 8601 date-time with an offset, in UTC; None when it is not one."""
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}", value):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        return moment.astimezone(dt.timezone.utc)
    except OverflowError:
        return None


def safe_ref(value) -> bool:
    """A transaction, message or reference id this hub may keep and log: up to 99 characters of letters, digits
    and ``._:@+=/-``, and nothing in it that reads as a resident ID number."""
    return isinstance(value, str) and bool(_SAFE_REF.fullmatch(value)) and not any(
        is_valid_id(m) for m in _ID_LIKE.findall(value))


def new_id() -> str:
    return uuid.uuid4().hex


# -- keys and signatures ----------------------------------------------------------------------------------------
def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_b64(key: Ed25519PublicKey) -> str:
    return base64.urlsafe_b64encode(raw_public_key(key)).rstrip(b"=").decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from its raw 32 bytes in base64url; ValueError otherwise."""
    try:
        raw = base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error, TypeError, AttributeError):
        raise ValueError("not an Ed25519 public key (raw 32 bytes, base64url)") from None


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public_key(key)).hexdigest()[:16]


def digest(header, message) -> str:
    body = canonical_json({"header": header, "message": message})
    return base64.b64encode(hashlib.blake2b(body, digest_size=64).digest()).decode("ascii")


def signing_string(header, message, created: int, expires: int) -> bytes:
    return f"(created): {created}\n(expires): {expires}\ndigest: BLAKE-512={digest(header, message)}".encode("ascii")


def sign(header: dict, message, key: Ed25519PrivateKey, sender_id: str, *, now: dt.datetime | None = None,
         lifetime_s: int = SIGNATURE_LIFETIME_S) -> str:
    """The ``signature`` of an envelope this hub (``sender_id``) sends."""
    created = int((now or utcnow()).timestamp())
    expires = created + lifetime_s
    sig = base64.b64encode(key.sign(signing_string(header, message, created, expires))).decode("ascii")
    kid = f"{sender_id}|{key_id(key.public_key())}|ed25519"
    return (f'Signature: namespace="spdci", kidId="{kid}", algorithm="ed25519", created="{created}", '
            f'expires="{expires}", headers="(created) (expires) digest", signature="{sig}"')


@dataclass(frozen=True)
class SignatureParams:
    sender_id: str
    key_id: str
    created: int
    expires: int
    signature: bytes


def parse_signature(text) -> SignatureParams:
    """The parameters of a ``signature`` string; DciError (err.signature.invalid) when it is not one."""
    def bad(why: str) -> DciError:
        return DciError("err.signature.invalid", why, status=401)

    if not isinstance(text, str) or len(text) > 2048:
        raise bad("the signature is not a Signature string")
    body = text.strip()
    if body.startswith("Signature:"):
        body = body[len("Signature:"):]
    params: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        m = _PARAM.match(body, pos)
        if not m or m.end() == pos:
            raise bad("the signature's parameters are not name=\"value\" pairs")
        if m.group(1) in params:
            raise bad(f"the signature names {m.group(1)} twice")
        params[m.group(1)] = m.group(2)
        pos = m.end()
    missing = [p for p in ("kidId", "algorithm", "created", "expires", "headers", "signature") if p not in params]
    if missing:
        raise bad(f"the signature lacks {', '.join(missing)}")
    if params.get("namespace", "spdci") != "spdci":
        raise bad("namespace: spdci")
    if params["algorithm"].lower() != "ed25519":
        raise bad("algorithm: only ed25519 is accepted")
    if params["headers"].split() != ["(created)", "(expires)", "digest"]:
        raise bad('headers: "(created) (expires) digest"')
    kid = params["kidId"].split("|")
    if len(kid) != 3 or kid[2].lower() != "ed25519" or not kid[0] or not re.fullmatch(r"[0-9a-f]{16}", kid[1]):
        raise bad("kidId: {sender_id}|{key_id}|ed25519")
    if not (params["created"].isdigit() and params["expires"].isdigit()) or len(params["created"]) > 12 \
            or len(params["expires"]) > 12:
        raise bad("created and expires: Unix seconds")
    try:
        raw = base64.b64decode(params["signature"], validate=True)
    except (binascii.Error, ValueError):
        raise bad("signature: base64") from None
    if len(raw) != 64:
        raise bad("signature: an Ed25519 signature is 64 bytes")
    return SignatureParams(kid[0], kid[1], int(params["created"]), int(params["expires"]), raw)


def verify(header, message, signature, public_key: Ed25519PublicKey, sender_id: str, *,
           now: dt.datetime | None = None) -> SignatureParams:
    """Check an envelope's signature against the sender's registered key; DciError (401) when it is missing,
    malformed, expired, by another key or sender, or does not match the header and message."""
    if signature is None or signature == "":
        raise DciError("err.signature.missing", "the envelope has no signature", status=401)
    params = parse_signature(signature)
    if params.sender_id != sender_id:
        raise DciError("err.signature.invalid", "kidId names another sender than the authenticated platform",
                       status=401)
    if params.key_id != key_id(public_key):
        raise DciError("err.signature.invalid", "signed with a key that is not registered for the sender", status=401)
    t = int((now or utcnow()).timestamp())
    if params.created > t + CLOCK_SKEW_S or params.expires < t or params.expires <= params.created \
            or params.expires - params.created > MAX_SIGNATURE_LIFETIME_S:
        raise DciError("err.signature.invalid", "the signature is expired or not yet valid", status=401)
    try:
        public_key.verify(params.signature, signing_string(header, message, params.created, params.expires))
    except InvalidSignature:
        raise DciError("err.signature.invalid", "the signature does not match the header and message",
                       status=401) from None
    return params


# -- headers ----------------------------------------------------------------------------------------------------
def request_header(action: str, *, sender_id: str, receiver_id: str | None, total_count: int,
                   sender_uri: str | None = None, now: dt.datetime | None = None) -> dict:
    """A MsgHeader_V1.0.0 for a message this hub sends."""
    header = {"version": VERSION, "message_id": new_id(), "message_ts": timestamp(now), "action": action,
              "sender_id": sender_id, "total_count": total_count, "is_msg_encrypted": False}
    if receiver_id:
        header["receiver_id"] = receiver_id
    if sender_uri:
        header["sender_uri"] = sender_uri
    return header


def callback_header(action: str, *, status: str, sender_id: str, receiver_id: str | None, total_count: int = 0,
                    completed_count: int | None = None, reason_code: str | None = None,
                    reason_message: str | None = None, now: dt.datetime | None = None) -> dict:
    """A MsgCallbackHeader_V1.0.0 (also a valid MsgHeader_V1.0.0) for an answer or callback this hub sends."""
    header = {"version": VERSION, "message_id": new_id(), "message_ts": timestamp(now), "action": action,
              "status": status, "total_count": total_count,
              "completed_count": total_count if completed_count is None else completed_count,
              "sender_id": sender_id, "is_msg_encrypted": False}
    if receiver_id:
        header["receiver_id"] = receiver_id
    if reason_code:
        header["status_reason_code"] = reason_code
    if reason_message:
        header["status_reason_message"] = reason_message[:999]
    return header


def envelope(header: dict, message, key: Ed25519PrivateKey, sender_id: str) -> dict:
    out = {"signature": sign(header, message, key, sender_id), "header": header}
    if message is not None:
        out["message"] = message
    return out


def ack(correlation_id: str, *, error: DciError | None = None) -> dict:
    """The spec's acknowledgement (Response): ACK, or ERR with the error."""
    message = {"ack_status": "ERR" if error else "ACK", "timestamp": timestamp(), "correlation_id": correlation_id}
    if error is not None:
        message["error"] = {"code": error.code, "message": error.detail[:999]}
    return {"message": message}


def http_errors(error: DciError) -> dict:
    """The spec's HttpErrorResponse (401, 403)."""
    return {"errors": [{"code": error.code, "message": error.detail[:999]}]}


def is_encrypted(message) -> bool:
    """Whether a message is the spec's EncryptedMessage (JWE) rather than a clear one."""
    return isinstance(message, dict) and "ciphertext" in message and ("encrypted_key" in message or "iv" in message)
