"""validation: stored Data Docs, per-member states, checks across the sources of a request; console sessions

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("validation_runs", schema=None) as batch_op:
        batch_op.alter_column("batch_id", existing_type=sa.String(length=32), nullable=True)
        batch_op.add_column(sa.Column("request_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("docs", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_validation_runs_request_id"), ["request_id"], unique=False)
        batch_op.create_foreign_key("fk_validation_runs_request_id_requests", "requests", ["request_id"], ["id"])
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("validation_run_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_quarantine_validation_run_id"), ["validation_run_id"], unique=False)
        batch_op.create_foreign_key("fk_quarantine_validation_run_id_validation_runs", "validation_runs",
                                    ["validation_run_id"], ["id"])
    with op.batch_alter_table("fetch_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("members", sa.JSON(), nullable=True))
    op.create_table(
        "console_sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["api_clients.id"]),
        sa.PrimaryKeyConstraint("token_sha256"),
    )
    op.create_index(op.f("ix_console_sessions_client_id"), "console_sessions", ["client_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_console_sessions_client_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    with op.batch_alter_table("fetch_batches", schema=None) as batch_op:
        batch_op.drop_column("members")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_constraint("fk_quarantine_validation_run_id_validation_runs", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_quarantine_validation_run_id"))
        batch_op.drop_column("validation_run_id")
    with op.batch_alter_table("validation_runs", schema=None) as batch_op:
        batch_op.drop_constraint("fk_validation_runs_request_id_requests", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_validation_runs_request_id"))
        batch_op.drop_column("docs")
        batch_op.drop_column("source")
        batch_op.drop_column("request_id")
        batch_op.alter_column("batch_id", existing_type=sa.String(length=32), nullable=False)
