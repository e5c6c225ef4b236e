"""Key rotation of the field encryption: `hub keys rotate`, `hub keys status`, `hub keys retire KID`.

Rotation adds a new key to the keyring and makes it active (every process picks the file up when it changes), then
re-encrypts every stored value sealed with another key, in batches of their own transactions, while the hub keeps
serving: the keyring holds the old keys meanwhile, so a value read between two batches decrypts under whichever
key sealed it, and each value is replaced only if it is still the one read (a concurrent writer wins; the next pass
takes its value). A key is retired only when it is not active and no stored value needs it. Rotations and
retirements are ledger entries (key ids only).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from typing import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select, update

from consent import ledger
from core.crypto import b64e, keyring
from core.settings import settings
from core.store import (
    DciTransaction,
    ExchangeAnswer,
    HouseholdRecord,
    RawResponse,
    RequestMember,
    ResidentApplication,
    ResidentSession,
    SignedForm,
    SigningInvitation,
    SourceRow,
    Subscription,
    aad_application,
    aad_dci,
    aad_exchange_answer,
    aad_exchange_signature,
    aad_invitation,
    aad_member,
    aad_raw_response,
    aad_raw_signature,
    aad_record,
    aad_resident_session,
    aad_signed_form,
    aad_source_row,
    session,
)
from hub.stages.notify import subscription_aad


@dataclass(frozen=True)
class Column:
    model: type
    name: str
    aad: Callable[[object], str]
    key: str = "id"  # the row's primary key, by which rows are paged and updated

    @property
    def label(self) -> str:
        return f"{self.model.__tablename__}.{self.name}"


def _subscription_aad(row) -> str:
    return subscription_aad(row.id)


# every encrypted column of the store, with the associated data that binds each value to its row
COLUMNS = (
    Column(RequestMember, "id_number_enc", lambda r: aad_member(r.request_id, "id_number_enc", r.person_ref)),
    Column(RequestMember, "name_enc", lambda r: aad_member(r.request_id, "name_enc", r.person_ref)),
    Column(RawResponse, "body_enc", lambda r: aad_raw_response(r.batch_id, r.seq)),
    Column(RawResponse, "signature_enc", lambda r: aad_raw_signature(r.batch_id, r.seq)),
    Column(ExchangeAnswer, "body_enc", lambda r: aad_exchange_answer(r.exchange_id, r.seq)),
    Column(ExchangeAnswer, "signature_enc", lambda r: aad_exchange_signature(r.exchange_id, r.seq)),
    Column(SourceRow, "data_enc", lambda r: aad_source_row(r.batch_id, r.row_no)),
    Column(HouseholdRecord, "content_enc", lambda r: aad_record(r.household_ref, r.version)),
    Column(Subscription, "secret_enc", _subscription_aad),
    Column(DciTransaction, "payload_enc", lambda r: aad_dci(r.id)),
    Column(SignedForm, "content_enc", lambda r: aad_signed_form(r.id)),
    Column(SigningInvitation, "token_enc", lambda r: aad_invitation(r.id)),
    Column(ResidentSession, "id_number_enc", lambda r: aad_resident_session(r.token_sha256, "id_number_enc"),
           key="token_sha256"),
    Column(ResidentSession, "name_enc", lambda r: aad_resident_session(r.token_sha256), key="token_sha256"),
    Column(ResidentApplication, "members_enc", lambda r: aad_application(r.id)),
)


class KeyInUse(RuntimeError):
    """The key is active or stored values still need it."""


def _write_keyring(doc: dict) -> None:
    """Replace the keyring file atomically (mode 0600): readers see the old file or the new one."""
    path = settings().keyring_path
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _doc() -> dict:
    return json.loads(settings().keyring_path.read_text())


def new_key() -> str:
    """Add a new encryption key and make it active; return its id. Old keys stay for decryption."""
    doc = _doc()
    kid = "k" + secrets.token_hex(4)
    previous = doc["encryption"]["active"]
    doc["encryption"]["keys"][kid] = b64e(AESGCM.generate_key(bit_length=256))
    doc["encryption"]["active"] = kid
    _write_keyring(doc)
    with session() as s:
        ledger.append(s, "keys.rotated", {"active": kid, "previous": previous})
    return kid


def _sealed_otherwise(column: Column, active: str):
    col = getattr(column.model, column.name)
    return col.not_like(f"v2.{active}.%") & col.not_like(f"v3.{active}.%")


def reencrypt(batch: int = 500, max_passes: int = 10) -> dict[str, int]:
    """Re-encrypt every value not sealed (v2, or v3 compressed) with the active key, each in the form it has;
    returns how many per column."""
    done = {c.label: 0 for c in COLUMNS}
    for _ in range(max_passes):
        keys = keyring()
        moved = 0
        for column in COLUMNS:
            col = getattr(column.model, column.name)
            pk = getattr(column.model, column.key)
            last = None
            while True:
                with session() as s:
                    q = select(column.model).where(_sealed_otherwise(column, keys.active_kid))
                    if last is not None:
                        q = q.where(pk > last)
                    rows = s.scalars(q.order_by(pk).limit(batch)).all()
                    for row in rows:
                        old = getattr(row, column.name)
                        aad = column.aad(row)
                        new = keys.reseal(old, aad=aad)
                        res = s.execute(update(column.model).where(pk == getattr(row, column.key), col == old)
                                        .values({column.name: new}).execution_options(synchronize_session=False))
                        done[column.label] += res.rowcount
                        moved += res.rowcount
                if len(rows) < batch:
                    break
                last = getattr(rows[-1], column.key)
        if not moved:
            break
    return done


def usage() -> dict[str, dict[str, int]]:
    """Per key id, how many stored values each column holds sealed with it."""
    keys = keyring()
    out: dict[str, dict[str, int]] = {kid: {} for kid in keys.enc_keys}
    with session() as s:
        for column in COLUMNS:
            col = getattr(column.model, column.name)
            for kid in keys.enc_keys:
                n = s.scalar(select(func.count()).select_from(column.model).where(col.like(f"v_.{kid}.%")))
                if n:
                    out[kid][column.label] = n
    return out


def retire(kid: str) -> None:
    """Remove a key from the keyring; refused while it is active or any stored value needs it."""
    doc = _doc()
    if kid not in doc["encryption"]["keys"]:
        raise KeyError(kid)
    if doc["encryption"]["active"] == kid:
        raise KeyInUse(f"key {kid} is the active key")
    left = usage().get(kid, {})
    if left:
        raise KeyInUse(f"key {kid} still seals {sum(left.values())} values ({', '.join(sorted(left))}): "
                       "run `hub keys rotate` to finish")
    del doc["encryption"]["keys"][kid]
    _write_keyring(doc)
    with session() as s:
        ledger.append(s, "keys.retired", {"kid": kid})


def rotate(batch: int = 500) -> tuple[str, dict[str, int]]:
    """A new active key and every value re-encrypted under it."""
    kid = new_key()
    return kid, reencrypt(batch)
