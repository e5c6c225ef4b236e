"""agencies' circuits shared by every process of the hub: an address's consecutive failures, when its circuit opened
and until when a Retry-After holds calls back (connectors.transport.SharedCircuitBreaker); keyed by the address's
SHA-256, nothing of a request

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agency_circuits",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=True),
        sa.Column("not_before", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("agency_circuits")
