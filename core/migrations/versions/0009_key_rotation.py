"""key rotation: a published record's ciphertext may be re-encrypted (nothing else of it may change); members'
values bound to their row (the person's pseudonym) and to the key id

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FIXED = ("id", "household_ref", "version", "request_id", "as_of", "recorded_at", "completeness", "content_sha256",
         "signature")  # every column of household_records but content_enc


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        same = " AND ".join(f"NEW.{c}::text IS NOT DISTINCT FROM OLD.{c}::text" for c in FIXED)
        op.execute("CREATE OR REPLACE FUNCTION hub_record_reencrypt_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN IF TG_OP = 'UPDATE' AND {same} THEN RETURN NEW; END IF; "
                   "RAISE EXCEPTION 'table % is immutable: publish a new version', TG_TABLE_NAME; END $$")
        op.execute("DROP TRIGGER IF EXISTS household_records_immutable ON household_records")
        op.execute("CREATE TRIGGER household_records_immutable BEFORE UPDATE OR DELETE ON household_records "
                   "FOR EACH ROW EXECUTE FUNCTION hub_record_reencrypt_only()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS household_records_no_update")
        op.execute(f"CREATE TRIGGER household_records_no_update BEFORE UPDATE OF {', '.join(FIXED)} "
                   "ON household_records BEGIN SELECT RAISE(ABORT, 'table household_records is immutable: publish "
                   "a new version'); END")
    _rebind_members(old=lambda r, c: f"request_members.{c}:{r.request_id}",
                    new=lambda r, c: f"request_members.{c}:{r.request_id}:{r.person_ref}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS household_records_immutable ON household_records")
        op.execute("CREATE TRIGGER household_records_immutable BEFORE UPDATE OR DELETE ON household_records "
                   "FOR EACH ROW EXECUTE FUNCTION hub_immutable()")
        op.execute("DROP FUNCTION IF EXISTS hub_record_reencrypt_only()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS household_records_no_update")
        op.execute("CREATE TRIGGER household_records_no_update BEFORE UPDATE ON household_records "
                   "BEGIN SELECT RAISE(ABORT, 'table household_records is immutable: publish a new version'); END")
    _rebind_members(old=lambda r, c: f"request_members.{c}:{r.request_id}:{r.person_ref}",
                    new=lambda r, c: f"request_members.{c}:{r.request_id}", legacy=True)


def _rebind_members(old, new, legacy: bool = False) -> None:
    """Re-encrypt the members' ID numbers and names under their new associated data (with the keyring of
    HUB_HOME, which exists wherever members do)."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, request_id, person_ref, id_number_enc, name_enc FROM request_members"
                                )).all()
    if not rows:
        return
    from core.crypto import keyring

    keys = keyring()
    for r in rows:
        values = {}
        for c in ("id_number_enc", "name_enc"):
            plain = keys.decrypt(getattr(r, c), aad=old(r, c))
            values[c] = _legacy_encrypt(keys, plain, new(r, c)) if legacy else keys.encrypt(plain, aad=new(r, c))
        bind.execute(sa.text("UPDATE request_members SET id_number_enc = :i, name_enc = :n WHERE id = :id"),
                     {"i": values["id_number_enc"], "n": values["name_enc"], "id": r.id})


def _legacy_encrypt(keys, plaintext: str, aad: str) -> str:
    """A v1 value (what revision 0008's code reads)."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from core.crypto import b64e

    nonce = os.urandom(12)
    ct = AESGCM(keys.enc_keys[keys.active_kid]).encrypt(nonce, plaintext.encode("utf-8"), aad.encode())
    return f"v1.{keys.active_kid}.{b64e(nonce)}.{b64e(ct)}"
