"""assistance granted, as departments report it (幸福清单)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assistance_grants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("household_ref", sa.String(length=40), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("programme", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("granted_from", sa.Date(), nullable=False),
        sa.Column("granted_until", sa.Date(), nullable=True),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_assistance_grants_household_ref"), "assistance_grants", ["household_ref"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_assistance_grants_household_ref"), table_name="assistance_grants")
    op.drop_table("assistance_grants")
