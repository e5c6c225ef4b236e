"""validation results and Data Docs stored once however many runs have them (validation_texts, by SHA-256): a
re-check batch's thousands of runs share a few hundred results and one Data Docs per GX run; runs stored before keep
theirs inline

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "validation_texts",
        sa.Column("sha256", sa.String(length=64), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
    )
    with op.batch_alter_table("validation_runs") as batch:
        batch.add_column(sa.Column("results_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("docs_sha256", sa.String(length=64), nullable=True))
        batch.alter_column("results", existing_type=sa.JSON(), nullable=True)


def downgrade() -> None:
    bind = op.get_bind()
    # the runs' texts inline again, as 0018 keeps them (PostgreSQL's results column is JSON, not text)
    for column, cast in (("results", bind.dialect.name == "postgresql"), ("docs", False)):
        body = f"(SELECT body FROM validation_texts WHERE sha256 = validation_runs.{column}_sha256)"
        value = f"CAST({body} AS JSON)" if cast else body
        bind.execute(sa.text(f"UPDATE validation_runs SET {column} = {value} WHERE {column}_sha256 IS NOT NULL"))
    with op.batch_alter_table("validation_runs") as batch:
        batch.alter_column("results", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("docs_sha256")
        batch.drop_column("results_sha256")
    op.drop_table("validation_texts")
