"""signed authorization forms of household lookups (一证通办): the document itself, encrypted, its SHA-256, the
department and its case number, the lookup's id

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signed_forms",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_enc", sa.Text(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("case_ref", sa.String(length=64), nullable=False),
        sa.Column("lookup_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lookup_id"),
    )
    op.create_index(op.f("ix_signed_forms_sha256"), "signed_forms", ["sha256"], unique=False)
    op.create_index("ix_signed_forms_department_created_at", "signed_forms", ["department", "created_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_signed_forms_department_created_at", table_name="signed_forms")
    op.drop_index(op.f("ix_signed_forms_sha256"), table_name="signed_forms")
    op.drop_table("signed_forms")
