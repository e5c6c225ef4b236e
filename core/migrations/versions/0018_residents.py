"""residents on their phones (/m/): what members are asked to sign and their invitations (码上办), sign-ins in
progress and sessions, messages inside the hub, and applications residents start (申请); the monthly amount of a grant, when a department
reports it (幸福清单)

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assistance_grants", sa.Column("monthly_amount_fen", sa.Integer(), nullable=True))
    # a resident's requests are found by their pseudonym (/m/), as an auditor's timeline finds them
    op.create_index("ix_request_members_person_ref", "request_members", ["person_ref"])
    op.create_table(
        "signing_terms",
        sa.Column("request_id", sa.String(length=32), sa.ForeignKey("requests.id"), primary_key=True),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("authorization_id", sa.String(length=32), nullable=True),
    )
    op.create_table(
        "signing_invitations",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("token_sha256", sa.String(length=64), nullable=False, unique=True),
        sa.Column("token_enc", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=32), sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("person_ref", sa.String(length=40), nullable=False),
        sa.Column("minor", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("signer_ref", sa.String(length=40), nullable=True),
        sa.Column("financial", sa.Boolean(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.Column("evidence_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("request_id", "person_ref"),
    )
    op.create_index("ix_signing_invitations_request_id", "signing_invitations", ["request_id"])
    op.create_index("ix_signing_invitations_person_ref", "signing_invitations", ["person_ref"])
    op.create_table(
        "resident_logins",
        sa.Column("state", sa.String(length=64), primary_key=True),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("return_to", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "resident_sessions",
        sa.Column("token_sha256", sa.String(length=64), primary_key=True),
        sa.Column("person_ref", sa.String(length=40), nullable=False),
        sa.Column("masked_id", sa.String(length=18), nullable=False),
        sa.Column("id_number_enc", sa.Text(), nullable=False),
        sa.Column("name_enc", sa.Text(), nullable=False),
        sa.Column("adult_from", sa.Date(), nullable=False),
        sa.Column("issuer", sa.String(length=256), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("id_token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_resident_sessions_person_ref", "resident_sessions", ["person_ref"])
    op.create_table(
        "resident_messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("person_ref", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_resident_messages_person_ref", "resident_messages", ["person_ref"])
    op.create_table(
        "resident_applications",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("applicant_ref", sa.String(length=40), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("programme", sa.String(length=32), nullable=False),
        sa.Column("members_enc", sa.Text(), nullable=False),
        sa.Column("member_refs", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("request_id", sa.String(length=32), sa.ForeignKey("requests.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
    )
    op.create_index("ix_resident_applications_applicant_ref", "resident_applications", ["applicant_ref"])
    op.create_index("ix_resident_applications_department", "resident_applications", ["department"])


def downgrade() -> None:
    op.drop_column("assistance_grants", "monthly_amount_fen")
    op.drop_index("ix_request_members_person_ref", table_name="request_members")
    for table in ("resident_applications", "resident_messages", "resident_sessions", "resident_logins",
                  "signing_invitations", "signing_terms"):
        op.drop_table(table)
