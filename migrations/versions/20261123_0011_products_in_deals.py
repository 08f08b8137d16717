"""every product in deals: case facts, freezes, payout groups and refunds

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# party and property columns a product other than resale escrow may not have (a payer refunded by original
# route has no bank account of record; an intent deposit has no seller yet)
NULLABLE_NOW = (
    ("buyer_bank_name", sa.String(length=64)),
    ("buyer_bank_account", sa.String(length=512)),
    ("seller_name", sa.String(length=64)),
    ("seller_id_number", sa.String(length=512)),
    ("seller_bank_name", sa.String(length=64)),
    ("seller_bank_account", sa.String(length=512)),
    ("property_address", sa.String(length=256)),
    ("certificate_no", sa.String(length=64)),
)


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch_op:
        batch_op.add_column(sa.Column("facts", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("frozen_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("frozen_reason", sa.String(length=256), nullable=True))
        for name, type_ in NULLABLE_NOW:
            batch_op.alter_column(name, existing_type=type_, nullable=True)
    with op.batch_alter_table("payouts") as batch_op:
        batch_op.add_column(sa.Column("release_group", sa.String(length=64), nullable=True))
        batch_op.drop_constraint(op.f("ck_payouts_purpose_known"), type_="check")
        batch_op.create_check_constraint("purpose_known", "purpose IN ('release','return','refund')")
        batch_op.create_index(batch_op.f("ix_payouts_release_group"), ["release_group"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("payouts") as batch_op:
        batch_op.drop_index(batch_op.f("ix_payouts_release_group"))
        batch_op.drop_constraint(op.f("ck_payouts_purpose_known"), type_="check")
        batch_op.create_check_constraint("purpose_known", "purpose IN ('release','return')")
        batch_op.drop_column("release_group")
    with op.batch_alter_table("deals") as batch_op:
        for name, type_ in NULLABLE_NOW:
            batch_op.alter_column(name, existing_type=type_, nullable=False)
        batch_op.drop_column("frozen_reason")
        batch_op.drop_column("frozen_by")
        batch_op.drop_column("frozen_at")
        batch_op.drop_column("facts")
