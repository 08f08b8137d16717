"""inbox rows carry a partition (by account or payout), so that several processors share the inbox

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

DUE = "processed_at IS NULL AND outcome IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("bank_notifications") as batch_op:
        batch_op.add_column(sa.Column("partition_no", sa.SmallInteger(), server_default="0", nullable=False))
    op.drop_index("ix_bank_notifications_due", table_name="bank_notifications")
    op.create_index(
        "ix_bank_notifications_due",
        "bank_notifications",
        ["partition_no", "id"],
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )


def downgrade() -> None:
    op.drop_index("ix_bank_notifications_due", table_name="bank_notifications")
    op.create_index(
        "ix_bank_notifications_due",
        "bank_notifications",
        ["id"],
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )
    with op.batch_alter_table("bank_notifications") as batch_op:
        batch_op.drop_column("partition_no")
