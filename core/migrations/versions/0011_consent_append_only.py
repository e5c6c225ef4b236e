"""consent changed only by appending: revocations and expiries are rows of their own; authorizations, their members,
revocations and expiries refuse UPDATE and DELETE (triggers; the application role has neither, core.store.grant_app_role)

The revocation columns (authorizations.revoked_at, authorization_members.revoked_at) and scope_revocations become
rows of ``revocations``; authorizations.expired_logged becomes rows of ``authorization_expiries``.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CONSENT_TABLES = ("authorizations", "authorization_members", "revocations", "authorization_expiries")


def _protect(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION hub_consent_append_only()")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, 'consent table {table} is append-only'); END")


def _unprotect(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")


def upgrade() -> None:
    op.create_table(
        "revocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("authorization_id", sa.String(length=32), nullable=False),
        sa.Column("person_ref", sa.String(length=40), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["authorization_id"], ["authorizations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_revocations_authorization_id", "revocations", ["authorization_id"], unique=False)
    op.create_table(
        "authorization_expiries",
        sa.Column("authorization_id", sa.String(length=32), nullable=False),
        sa.Column("logged_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["authorization_id"], ["authorizations.id"]),
        sa.PrimaryKeyConstraint("authorization_id"),
    )
    # what was revoked or logged before, as rows
    op.execute("INSERT INTO revocations (authorization_id, person_ref, source, revoked_at) "
               "SELECT id, NULL, NULL, revoked_at FROM authorizations WHERE revoked_at IS NOT NULL")
    op.execute("INSERT INTO revocations (authorization_id, person_ref, source, revoked_at) "
               "SELECT authorization_id, person_ref, NULL, revoked_at FROM authorization_members "
               "WHERE revoked_at IS NOT NULL")
    op.execute("INSERT INTO revocations (authorization_id, person_ref, source, revoked_at) "
               "SELECT authorization_id, person_ref, source, revoked_at FROM scope_revocations")
    op.execute("INSERT INTO authorization_expiries (authorization_id, logged_at) "
               "SELECT id, valid_until FROM authorizations WHERE expired_logged")
    with op.batch_alter_table("authorizations", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("expired_logged")
    with op.batch_alter_table("authorization_members", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
    op.drop_index("ix_scope_revocations_authorization_id", table_name="scope_revocations")
    op.drop_table("scope_revocations")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE OR REPLACE FUNCTION hub_consent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   "BEGIN RAISE EXCEPTION 'consent table % is append-only', TG_TABLE_NAME; END $$")
    for table in CONSENT_TABLES:
        _protect(table)


def downgrade() -> None:
    for table in CONSENT_TABLES:
        _unprotect(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS hub_consent_append_only()")
    op.create_table(
        "scope_revocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("authorization_id", sa.String(length=32), nullable=False),
        sa.Column("person_ref", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["authorization_id"], ["authorizations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("authorization_id", "person_ref", "source"),
    )
    op.create_index("ix_scope_revocations_authorization_id", "scope_revocations", ["authorization_id"], unique=False)
    with op.batch_alter_table("authorizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("expired_logged", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("authorization_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE authorizations SET revoked_at = (SELECT min(r.revoked_at) FROM revocations r "
               "WHERE r.authorization_id = authorizations.id AND r.person_ref IS NULL)")
    op.execute("UPDATE authorization_members SET revoked_at = (SELECT min(r.revoked_at) FROM revocations r "
               "WHERE r.authorization_id = authorization_members.authorization_id "
               "AND r.person_ref = authorization_members.person_ref AND r.source IS NULL)")
    op.execute("INSERT INTO scope_revocations (authorization_id, person_ref, source, revoked_at) "
               "SELECT authorization_id, person_ref, source, min(revoked_at) FROM revocations "
               "WHERE source IS NOT NULL GROUP BY authorization_id, person_ref, source")
    op.execute("UPDATE authorizations SET expired_logged = TRUE WHERE id IN "
               "(SELECT authorization_id FROM authorization_expiries)")
    op.drop_table("authorization_expiries")
    op.drop_index("ix_revocations_authorization_id", table_name="revocations")
    op.drop_table("revocations")
