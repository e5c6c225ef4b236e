"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 14:30:06.648848
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_clients',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=True),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_sha256')
    )
    op.create_table('ledger_checkpoints',
    sa.Column('number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('root_sha256', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('number')
    )
    op.create_table('ledger_events',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('leaf_sha256', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('ledger_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_events_kind'), ['kind'], unique=False)

    op.create_table('ledger_leaves',
    sa.Column('leaf_index', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('leaf_sha256', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('leaf_index'),
    sa.UniqueConstraint('seq')
    )
    op.create_table('ledger_nodes',
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('index', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('level', 'index')
    )
    op.create_table('requests',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('case_ref', sa.String(length=64), nullable=False),
    sa.Column('sources', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('household_ref', sa.String(length=40), nullable=True),
    sa.Column('client_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_requests_household_ref'), ['household_ref'], unique=False)

    op.create_table('authorizations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('department', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('valid_from', sa.DateTime(), nullable=False),
    sa.Column('valid_until', sa.DateTime(), nullable=False),
    sa.Column('recheck_interval_days', sa.Integer(), nullable=False),
    sa.Column('data_life_days', sa.Integer(), nullable=False),
    sa.Column('receipt', sa.JSON(), nullable=False),
    sa.Column('receipt_sha256', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('expired_logged', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorizations_request_id'), ['request_id'], unique=False)

    op.create_table('consent_decisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('person_ref', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=False),
    sa.Column('allowed', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('authorization_id', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consent_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_decisions_request_id'), ['request_id'], unique=False)

    op.create_table('fetch_batches',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('requested', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('returned', sa.Integer(), nullable=False),
    sa.Column('response_sha256', sa.String(length=64), nullable=True),
    sa.Column('fetched_at', sa.DateTime(), nullable=False),
    sa.Column('validated', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('fetch_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fetch_batches_request_id'), ['request_id'], unique=False)
        batch_op.create_index('ix_fetch_batches_request_source', ['request_id', 'source'], unique=False)

    op.create_table('household_records',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('household_ref', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('as_of', sa.DateTime(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('completeness', sa.JSON(), nullable=False),
    sa.Column('content_enc', sa.Text(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('household_ref', 'version'),
    sa.UniqueConstraint('request_id')
    )
    with op.batch_alter_table('household_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_records_household_ref'), ['household_ref'], unique=False)

    op.create_table('request_members',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('person_ref', sa.String(length=40), nullable=False),
    sa.Column('id_number_enc', sa.Text(), nullable=False),
    sa.Column('name_enc', sa.Text(), nullable=False),
    sa.Column('relation', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', 'person_ref')
    )
    with op.batch_alter_table('request_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_members_request_id'), ['request_id'], unique=False)

    op.create_table('authorization_members',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('authorization_id', sa.String(length=32), nullable=False),
    sa.Column('person_ref', sa.String(length=40), nullable=False),
    sa.Column('adult_from', sa.Date(), nullable=False),
    sa.Column('evidence_sha256', sa.String(length=64), nullable=True),
    sa.Column('guardian_ref', sa.String(length=40), nullable=True),
    sa.Column('sources', sa.JSON(), nullable=False),
    sa.Column('financial_sources', sa.JSON(), nullable=False),
    sa.Column('financial_evidence_sha256', sa.String(length=64), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['authorization_id'], ['authorizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('authorization_id', 'person_ref')
    )
    with op.batch_alter_table('authorization_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_members_authorization_id'), ['authorization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorization_members_person_ref'), ['person_ref'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('batch_id', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('person_ref', sa.String(length=40), nullable=True),
    sa.Column('expectation', sa.String(length=96), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['fetch_batches.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_batch_id'), ['batch_id'], unique=False)

    op.create_table('scope_revocations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('authorization_id', sa.String(length=32), nullable=False),
    sa.Column('person_ref', sa.String(length=40), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['authorization_id'], ['authorizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('authorization_id', 'person_ref', 'source')
    )
    with op.batch_alter_table('scope_revocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scope_revocations_authorization_id'), ['authorization_id'], unique=False)

    op.create_table('source_rows',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('batch_id', sa.String(length=32), nullable=False),
    sa.Column('row_no', sa.Integer(), nullable=False),
    sa.Column('person_ref', sa.String(length=40), nullable=True),
    sa.Column('data_enc', sa.Text(), nullable=False),
    sa.Column('valid', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['fetch_batches.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('batch_id', 'row_no')
    )
    with op.batch_alter_table('source_rows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_rows_batch_id'), ['batch_id'], unique=False)

    op.create_table('validation_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('batch_id', sa.String(length=32), nullable=False),
    sa.Column('suite', sa.String(length=64), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('rows_failed', sa.Integer(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['fetch_batches.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('validation_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_validation_runs_batch_id'), ['batch_id'], unique=False)



    _append_only_ledger()


LEDGER_TABLES = ("ledger_events", "ledger_leaves", "ledger_nodes", "ledger_checkpoints")


def _append_only_ledger() -> None:
    """The ledger tables MUST NOT be updated or deleted: a trigger refuses it on either backend (the PostgreSQL
    application role additionally gets no UPDATE or DELETE; see core.store.grant_app_role)."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION hub_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'ledger table % is append-only', TG_TABLE_NAME; END $$"
        )
        for table in LEDGER_TABLES:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION hub_ledger_append_only()")
    elif dialect == "sqlite":
        for table in LEDGER_TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, 'ledger table {table} is append-only'); END")


def downgrade() -> None:
    with op.batch_alter_table('validation_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_validation_runs_batch_id'))

    op.drop_table('validation_runs')
    with op.batch_alter_table('source_rows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_rows_batch_id'))

    op.drop_table('source_rows')
    with op.batch_alter_table('scope_revocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scope_revocations_authorization_id'))

    op.drop_table('scope_revocations')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_batch_id'))

    op.drop_table('quarantine')
    with op.batch_alter_table('authorization_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_members_person_ref'))
        batch_op.drop_index(batch_op.f('ix_authorization_members_authorization_id'))

    op.drop_table('authorization_members')
    with op.batch_alter_table('request_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_members_request_id'))

    op.drop_table('request_members')
    with op.batch_alter_table('household_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_records_household_ref'))

    op.drop_table('household_records')
    with op.batch_alter_table('fetch_batches', schema=None) as batch_op:
        batch_op.drop_index('ix_fetch_batches_request_source')
        batch_op.drop_index(batch_op.f('ix_fetch_batches_request_id'))

    op.drop_table('fetch_batches')
    with op.batch_alter_table('consent_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_decisions_request_id'))

    op.drop_table('consent_decisions')
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorizations_request_id'))

    op.drop_table('authorizations')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_requests_household_ref'))

    op.drop_table('requests')
    op.drop_table('ledger_nodes')
    op.drop_table('ledger_leaves')
    with op.batch_alter_table('ledger_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_events_kind'))

    op.drop_table('ledger_events')
    op.drop_table('ledger_checkpoints')
    op.drop_table('api_clients')
