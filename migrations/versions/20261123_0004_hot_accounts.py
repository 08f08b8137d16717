"""hot accounts: buffered postings, low-balance alert thresholds and alerts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # add_column outside batch mode: SQLite can add these in place, so the transfer triggers survive.
    op.add_column("ledger_accounts", sa.Column("hot", sa.Boolean(), server_default="0", nullable=False))
    op.add_column("ledger_accounts", sa.Column("alert_below_fen", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE ledger_accounts SET hot = "
        + ("1" if op.get_bind().dialect.name == "sqlite" else "true")
        + " WHERE code LIKE 'bank_clearing:%' OR code LIKE 'suspense:%' OR code LIKE 'fee_income%'"
    )
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "ledger_hot_entries",
        sa.Column("id", big_id, primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("debits_posted >= 0 AND credits_posted >= 0", name="deltas_non_negative"),
    )
    op.create_index("ix_ledger_hot_entries_account_id", "ledger_hot_entries", ["account_id"])
    op.create_table(
        "ledger_alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("projected_fen", sa.BigInteger(), nullable=False),
        sa.Column("threshold_fen", sa.BigInteger(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_ledger_alerts_account_id", "ledger_alerts", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_alerts_account_id", "ledger_alerts")
    op.drop_table("ledger_alerts")
    op.drop_index("ix_ledger_hot_entries_account_id", "ledger_hot_entries")
    op.drop_table("ledger_hot_entries")
    op.drop_column("ledger_accounts", "alert_below_fen")
    op.drop_column("ledger_accounts", "hot")
