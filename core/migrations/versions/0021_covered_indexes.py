"""indexes that another index or unique constraint already covers dropped: each was the first column of another
(source_rows.batch_id of (batch_id, row_no), validation_runs.request_id of (request_id, batch_id, run_id), ...), which
answers every look-up it answered; a province's re-check wrote each of them on every insert, and the largest,
source_rows.batch_id, took 4% of a re-checked city's store

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# (index, table, column): each covered by an index or unique constraint that begins with its column
COVERED = (
    ("ix_request_members_request_id", "request_members", "request_id"),
    ("ix_authorization_members_authorization_id", "authorization_members", "authorization_id"),
    ("ix_fetch_batches_request_id", "fetch_batches", "request_id"),
    ("ix_raw_responses_batch_id", "raw_responses", "batch_id"),
    ("ix_exchange_answers_exchange_id", "exchange_answers", "exchange_id"),
    ("ix_source_rows_batch_id", "source_rows", "batch_id"),
    ("ix_validation_runs_request_id", "validation_runs", "request_id"),
    ("ix_household_records_household_ref", "household_records", "household_ref"),
    ("ix_review_entries_run_id", "review_entries", "run_id"),
    ("ix_deliveries_notification_id", "deliveries", "notification_id"),
    ("ix_dci_notifications_subscription_code", "dci_notifications", "subscription_code"),
    ("ix_signing_invitations_request_id", "signing_invitations", "request_id"),
)


def upgrade() -> None:
    for name, table, _ in COVERED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, column in COVERED:
        op.create_index(name, table, [column])
