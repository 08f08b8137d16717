"""bank pacing and suspense: opening token buckets, the suspense review queue, designated payers, returns,
payout approvals

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_rate_limits",
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("tokens_milli", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("day_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bank_code", name=op.f("pk_bank_rate_limits")),
    )
    op.create_table(
        "suspense_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("bank_reference", sa.String(length=64), nullable=False),
        sa.Column("transfer_id", sa.String(length=96), nullable=False),
        sa.Column("account_no", sa.String(length=40), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("payer_name", sa.String(length=64), nullable=True),
        sa.Column("payer_account", sa.String(length=512), nullable=True),
        sa.Column("payer_matched", sa.Boolean(), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=True),
        sa.Column("resolution", sa.String(length=256), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_suspense_items_amount_positive")),
        sa.CheckConstraint(
            "reason IN ('unknown_account','wrong_payer')", name=op.f("ck_suspense_items_reason_known")
        ),
        sa.CheckConstraint(
            "status IN ('open','matched','returning','returned')", name=op.f("ck_suspense_items_status_known")
        ),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_suspense_items_deal_id_deals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suspense_items")),
        sa.UniqueConstraint(
            "bank_code", "bank_reference", name=op.f("uq_suspense_items_bank_code_bank_reference")
        ),
    )
    op.create_index(op.f("ix_suspense_items_account_no"), "suspense_items", ["account_no"])
    op.create_index(op.f("ix_suspense_items_deal_id"), "suspense_items", ["deal_id"])
    with op.batch_alter_table("virtual_accounts") as batch_op:
        batch_op.add_column(sa.Column("designated_payer", sa.Boolean(), server_default="0", nullable=False))
    with op.batch_alter_table("payouts") as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=16), server_default="release", nullable=False))
        batch_op.add_column(sa.Column("suspense_item_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_payouts_suspense_item_id_suspense_items"), "suspense_items", ["suspense_item_id"], ["id"]
        )
        batch_op.create_check_constraint("purpose_known", "purpose IN ('release','return')")
        batch_op.alter_column("status", type_=sa.String(length=24), existing_type=sa.String(length=16))
        batch_op.add_column(sa.Column("requested_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("approvals_required", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("approved_by", sa.JSON(), server_default="[]", nullable=False))
        batch_op.drop_constraint(op.f("ck_payouts_status_known"), type_="check")
        batch_op.create_check_constraint(
            "status_known", "status IN ('awaiting_approval','pending','submitted','succeeded','failed')"
        )


def downgrade() -> None:
    with op.batch_alter_table("payouts") as batch_op:
        batch_op.drop_constraint(op.f("ck_payouts_status_known"), type_="check")
        batch_op.create_check_constraint("status_known", "status IN ('pending','submitted','succeeded','failed')")
        batch_op.drop_column("approved_by")
        batch_op.drop_column("approvals_required")
        batch_op.drop_column("requested_by")
        batch_op.alter_column("status", type_=sa.String(length=16), existing_type=sa.String(length=24))
        batch_op.drop_constraint(op.f("ck_payouts_purpose_known"), type_="check")
        batch_op.drop_constraint(op.f("fk_payouts_suspense_item_id_suspense_items"), type_="foreignkey")
        batch_op.drop_column("suspense_item_id")
        batch_op.drop_column("purpose")
    with op.batch_alter_table("virtual_accounts") as batch_op:
        batch_op.drop_column("designated_payer")
    op.drop_index(op.f("ix_suspense_items_deal_id"), table_name="suspense_items")
    op.drop_index(op.f("ix_suspense_items_account_no"), table_name="suspense_items")
    op.drop_table("suspense_items")
    op.drop_table("bank_rate_limits")
