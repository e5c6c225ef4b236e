"""re-checks of current recipients, purge of raw data past its life, source health, alerts for staff

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no table copy): other tables reference these, and SQLite would refuse to drop them
    op.add_column("requests", sa.Column("kind", sa.String(length=16), nullable=False, server_default="application"))
    if op.get_bind().dialect.name == "sqlite":  # SQLite adds a column's foreign key only in the column itself
        op.execute("ALTER TABLE requests ADD COLUMN parent_id VARCHAR(32) REFERENCES requests (id)")
    else:
        op.add_column("requests", sa.Column("parent_id", sa.String(length=32), nullable=True))
        op.create_foreign_key("fk_requests_parent_id_requests", "requests", "requests", ["parent_id"], ["id"])
    op.create_index(op.f("ix_requests_parent_id"), "requests", ["parent_id"], unique=False)
    op.add_column("fetch_batches", sa.Column("purged_at", sa.DateTime(), nullable=True))
    op.create_table(
        "source_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("failure", sa.String(length=32), nullable=True),
        sa.Column("last_complete_fetch", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_source_checks_source"), "source_checks", ["source"], unique=False)
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("task_id", sa.String(length=250), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_index(op.f("ix_source_checks_source"), table_name="source_checks")
    op.drop_table("source_checks")
    op.drop_column("fetch_batches", "purged_at")
    op.drop_index(op.f("ix_requests_parent_id"), table_name="requests")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("parent_id")
        batch_op.drop_column("kind")
