"""raw agency answers, encrypted, for replay

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_responses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("body_enc", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["fetch_batches.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "seq"),
    )
    with op.batch_alter_table("raw_responses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_raw_responses_batch_id"), ["batch_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("raw_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_raw_responses_batch_id"))
    op.drop_table("raw_responses")
