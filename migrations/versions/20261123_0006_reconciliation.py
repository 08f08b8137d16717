"""reconciliation: runs of a bank's daily statement against our inbox and ledger, and their items

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATUSES = (
    "matched",
    "repaired",
    "suspense",
    "amount_mismatch",
    "mismatch",
    "unknown_debit",
    "payout_missing",
    "invalid",
    "error",
)


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bank_code", sa.String(16), nullable=False),
        sa.Column("statement_date", sa.Date(), nullable=False),
        sa.Column("source", sa.String(160), nullable=False),
        sa.Column("statement_sm3", sa.String(64), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("unresolved", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reconciliation_runs_bank_day", "reconciliation_runs", ["bank_code", "statement_date"])
    op.create_table(
        "reconciliation_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("reconciliation_runs.id"), nullable=False),
        sa.Column("row_no", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("direction", sa.String(8), nullable=True),
        sa.Column("bank_reference", sa.String(64), nullable=True),
        sa.Column("account_no", sa.String(40), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("our_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("counterparty_name", sa.String(128), nullable=True),
        sa.Column("payout_id", sa.String(64), nullable=True),
        sa.Column("deal_no", sa.String(32), nullable=True),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
    )
    op.create_index("ix_reconciliation_items_run_id", "reconciliation_items", ["run_id"])
    op.create_index("ix_reconciliation_items_payout_id", "reconciliation_items", ["payout_id"])


def downgrade() -> None:
    op.drop_index("ix_reconciliation_items_payout_id", "reconciliation_items")
    op.drop_index("ix_reconciliation_items_run_id", "reconciliation_items")
    op.drop_table("reconciliation_items")
    op.drop_index("ix_reconciliation_runs_bank_day", "reconciliation_runs")
    op.drop_table("reconciliation_runs")
