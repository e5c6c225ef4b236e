"""agencies' signed answers: each raw answer keeps its signature (manifest, key id, Ed25519 signature), encrypted
(the manifest names ID numbers), so auditors can verify it again with the agency's public key alone

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("raw_responses") as batch:
        batch.add_column(sa.Column("signature_enc", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("raw_responses") as batch:
        batch.drop_column("signature_enc")
