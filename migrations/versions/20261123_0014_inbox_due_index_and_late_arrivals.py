"""the inbox's due rows indexed on their own; suspense takes money arriving for a deal that has ended

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

DUE = "processed_at IS NULL AND outcome IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_bank_notifications_due",
        "bank_notifications",
        ["id"],
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )
    with op.batch_alter_table("suspense_items") as batch_op:
        batch_op.drop_constraint(op.f("ck_suspense_items_reason_known"), type_="check")
        batch_op.create_check_constraint("reason_known", "reason IN ('unknown_account','wrong_payer','deal_closed')")


def downgrade() -> None:
    with op.batch_alter_table("suspense_items") as batch_op:
        batch_op.drop_constraint(op.f("ck_suspense_items_reason_known"), type_="check")
        batch_op.create_check_constraint("reason_known", "reason IN ('unknown_account','wrong_payer')")
    op.drop_index("ix_bank_notifications_due", table_name="bank_notifications")
