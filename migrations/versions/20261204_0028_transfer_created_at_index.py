"""ledger_transfers.created_at indexed: the console's daily flows read the last 14 days of transfers, which
without it meant reading every transfer the ledger ever held (issue 21).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 13:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ledger_transfers_created_at", "ledger_transfers", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_transfers_created_at", table_name="ledger_transfers")
