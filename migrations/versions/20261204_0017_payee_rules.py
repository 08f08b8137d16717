"""payee rules: where each custody credit came from (payout_origins) and payee amendments approved by a
second person (payee_amendments)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payout_origins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.String(length=128), nullable=False),
        sa.Column("account", sa.String(length=512), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_payout_origins_origin_amount_positive")),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_payout_origins_deal_id_deals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_origins")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_payout_origins_transfer_id")),
    )
    op.create_index(op.f("ix_payout_origins_deal_id"), "payout_origins", ["deal_id"], unique=False)
    op.create_table(
        "payee_amendments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("payee_name", sa.String(length=512), nullable=False),
        sa.Column("account", sa.String(length=512), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('proposed','approved')", name=op.f("ck_payee_amendments_amendment_status_known")
        ),
        sa.CheckConstraint(
            "approved_by IS NULL OR approved_by <> proposed_by", name=op.f("ck_payee_amendments_amendment_four_eyes")
        ),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_payee_amendments_deal_id_deals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payee_amendments")),
    )
    op.create_index("ix_payee_amendments_deal_status", "payee_amendments", ["deal_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_payee_amendments_deal_status", table_name="payee_amendments")
    op.drop_table("payee_amendments")
    op.drop_index(op.f("ix_payout_origins_deal_id"), table_name="payout_origins")
    op.drop_table("payout_origins")
