"""payouts.sent_at: when a payout was first sent to the bank (set before the bank call), so a result for a
payout never sent can be refused. Payouts that are past approval when this runs may have been sent: they
count as sent (their last update), so no result the bank may rightly send is refused after the upgrade.

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-04 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("payouts", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE payouts SET sent_at = updated_at WHERE status <> 'awaiting_approval'")


def downgrade() -> None:
    with op.batch_alter_table("payouts") as batch:
        batch.drop_column("sent_at")
