"""a re-check found again by its key, not by its id: requests.recheck_key (unique) is what every attempt at one
application's re-check in one pipeline run derives (hub.stages.reverify.recheck_key), so a re-check's id is free to
sort by when it was made (core.ids.time_prefix) and the rows of a re-check batch land together in every index keyed
by request or batch id; the re-checks made before keep their ids, whose last 20 digits are that key

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("recheck_key", sa.String(length=20), nullable=True))
    op.execute("UPDATE requests SET recheck_key = substr(id, 13) WHERE kind = 'recheck'")
    op.create_index("ix_requests_recheck_key", "requests", ["recheck_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_requests_recheck_key", table_name="requests")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("recheck_key")
