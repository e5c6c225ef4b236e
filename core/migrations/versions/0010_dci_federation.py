"""federation (DCI Social Registry API): platforms' public keys, DCI transactions, subscriptions and their
notifications

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_key", sa.String(length=64), nullable=True))
    op.create_table(
        "dci_transactions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=True),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("transaction_id", sa.String(length=99), nullable=False),
        sa.Column("message_id", sa.String(length=99), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("callback_uri", sa.String(length=2048), nullable=True),
        sa.Column("payload_enc", sa.Text(), nullable=True),
        sa.Column("delivery", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_status", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["api_clients.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("direction", "platform", "message_id"),
    )
    op.create_index(op.f("ix_dci_transactions_platform"), "dci_transactions", ["platform"], unique=False)
    op.create_index(op.f("ix_dci_transactions_transaction_id"), "dci_transactions", ["transaction_id"], unique=False)
    op.create_table(
        "dci_subscriptions",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("person_ref", sa.String(length=40), nullable=False),
        sa.Column("household_ref", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("reg_event_type", sa.String(length=32), nullable=False),
        sa.Column("notify_record_type", sa.String(length=32), nullable=False),
        sa.Column("frequency", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["api_clients.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index(op.f("ix_dci_subscriptions_platform"), "dci_subscriptions", ["platform"], unique=False)
    op.create_index(op.f("ix_dci_subscriptions_household_ref"), "dci_subscriptions", ["household_ref"], unique=False)
    op.create_table(
        "dci_notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_code", sa.String(length=32), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_status", sa.String(length=32), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
        sa.ForeignKeyConstraint(["subscription_code"], ["dci_subscriptions.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_code", "notification_id"),
    )
    op.create_index(op.f("ix_dci_notifications_subscription_code"), "dci_notifications", ["subscription_code"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_dci_notifications_subscription_code"), table_name="dci_notifications")
    op.drop_table("dci_notifications")
    op.drop_index(op.f("ix_dci_subscriptions_household_ref"), table_name="dci_subscriptions")
    op.drop_index(op.f("ix_dci_subscriptions_platform"), table_name="dci_subscriptions")
    op.drop_table("dci_subscriptions")
    op.drop_index(op.f("ix_dci_transactions_transaction_id"), table_name="dci_transactions")
    op.drop_index(op.f("ix_dci_transactions_platform"), table_name="dci_transactions")
    op.drop_table("dci_transactions")
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_column("public_key")
