"""Party signing on a phone (issue 20): `signing_requests`, one per deal and party, the link's token and the
one-time code kept as hashes.

Revision ID: 0053
Revises: 0049
Create Date: 2026-12-05 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0053"
down_revision = "0049"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deal_id", sa.Integer(), sa.ForeignKey("deals.id"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("certificate_serial", sa.String(40), nullable=True),
        sa.Column("code_hash", sa.String(64), nullable=True),
        sa.Column("code_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("code_attempts", sa.Integer(), nullable=False),
        sa.Column("codes_sent", sa.Integer(), nullable=False),
        sa.Column("last_code_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_checks", sa.Integer(), nullable=False),
        sa.UniqueConstraint("deal_id", "role", name="uq_signing_requests_deal_role"),
    )
    op.create_index("ix_signing_requests_deal_id", "signing_requests", ["deal_id"])


def downgrade() -> None:
    op.drop_index("ix_signing_requests_deal_id", table_name="signing_requests")
    op.drop_table("signing_requests")
