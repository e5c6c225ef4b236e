"""batch exchanges (批量核对): an agency's raw answers to one call naming persons of many households are kept once
(exchange_answers); each household's batch names its exchange and how its rows are told apart in it (the references
its persons were sent with, the persons whose rows were left out)

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_answers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("exchange_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("body_enc", sa.Text(), nullable=False),
        sa.Column("signature_enc", sa.Text(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("exchange_id", "seq"),
    )
    op.create_index("ix_exchange_answers_exchange_id", "exchange_answers", ["exchange_id"])
    with op.batch_alter_table("fetch_batches") as batch:
        batch.add_column(sa.Column("exchange_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("exchange", sa.JSON(), nullable=True))
        batch.create_index("ix_fetch_batches_exchange_id", ["exchange_id"])


def downgrade() -> None:
    with op.batch_alter_table("fetch_batches") as batch:
        batch.drop_index("ix_fetch_batches_exchange_id")
        batch.drop_column("exchange")
        batch.drop_column("exchange_id")
    op.drop_index("ix_exchange_answers_exchange_id", "exchange_answers")
    op.drop_table("exchange_answers")
