"""assistance review (精准评估): each run of the review (counts only) and the households on its lists (pseudonyms,
department and reason codes); a review's finding goes to departments through the outbox, so a notification need not
announce a record version

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_runs",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("rules", sa.String(length=32), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_review_runs_as_of", "review_runs", ["as_of"])
    op.create_table(
        "review_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(length=32), sa.ForeignKey("review_runs.id"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("household_ref", sa.String(length=40), nullable=False),
        sa.Column("programme", sa.String(length=32), nullable=False),
        sa.Column("county", sa.String(length=6), nullable=True),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("since_version", sa.Integer(), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("new", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("run_id", "kind", "household_ref", "programme"),
    )
    op.create_index("ix_review_entries_run_id", "review_entries", ["run_id"])
    op.create_index("ix_review_entries_household_ref", "review_entries", ["household_ref"])
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("record_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("record_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("review_entries")
    op.drop_table("review_runs")
