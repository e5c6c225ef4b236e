"""validation results linked to the pipeline run that made them

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("validation_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_id", sa.String(length=250), nullable=True))
        batch_op.create_index(batch_op.f("ix_validation_runs_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("validation_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_validation_runs_run_id"))
        batch_op.drop_column("run_id")
