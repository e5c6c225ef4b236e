"""the lookups a re-check makes once per batch found by index, not by a scan that grows with the store: the requests'
checks across sources in one run (request_id, batch_id, run_id; the planner had taken run_id alone, every run of the
night's re-check so far) and the unfinished re-checks (kind, status)

Revision ID: 0020
Revises: 0019
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_validation_runs_request_batch_run", "validation_runs", ["request_id", "batch_id", "run_id"])
    op.create_index("ix_requests_kind_status", "requests", ["kind", "status"])


def downgrade() -> None:
    op.drop_index("ix_requests_kind_status", table_name="requests")
    op.drop_index("ix_validation_runs_request_batch_run", table_name="validation_runs")
