"""reconciliation both ways and by balance: ledger postings the statement lacks (ledger_only), the closing
balance against the ledger (balance_gap), exceptions that stay open until a person resolves them, and the
return of a credit to an account we do not know (a payout without a deal)

Revision ID: 0021
Revises: 0017
Create Date: 2026-12-04 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0017"
branch_labels = None
depends_on = None

OLD_STATUSES = (
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
STATUSES = (*OLD_STATUSES, "ledger_only", "balance_gap")
STATUS_CHECK = "ck_reconciliation_items_status_known"
DEAL_OR_RETURN = "ck_payouts_deal_or_return"
RESOLVED_WITH_REASON = (
    "(resolved_at IS NULL AND resolved_by IS NULL AND resolution IS NULL)"
    " OR (resolved_at IS NOT NULL AND resolved_by IS NOT NULL AND resolution IS NOT NULL)"
)


def upgrade() -> None:
    op.create_table(
        "reconciliation_exceptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("bank_code", sa.String(16), nullable=False),
        sa.Column("statement_date", sa.Date(), nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("bank_reference", sa.String(64), nullable=True),
        sa.Column("payout_id", sa.String(64), nullable=True),
        sa.Column("deal_no", sa.String(32), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("our_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("first_run_id", sa.Integer(), sa.ForeignKey("reconciliation_runs.id"), nullable=False),
        sa.Column("last_run_id", sa.Integer(), sa.ForeignKey("reconciliation_runs.id"), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.UniqueConstraint("bank_code", "key"),
        sa.CheckConstraint(f"kind IN {STATUSES!r}", name="kind_known"),
        sa.CheckConstraint(RESOLVED_WITH_REASON, name="resolved_with_reason"),
    )
    op.create_index(
        "ix_reconciliation_exceptions_bank_day", "reconciliation_exceptions", ["bank_code", "statement_date"]
    )
    with op.batch_alter_table("reconciliation_runs") as batch_op:
        batch_op.add_column(sa.Column("closing_balance_fen", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("ledger_balance_fen", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("reconciliation_items") as batch_op:
        batch_op.add_column(
            sa.Column("exception_id", sa.Integer(), sa.ForeignKey("reconciliation_exceptions.id"), nullable=True)
        )
        batch_op.drop_constraint(op.f(STATUS_CHECK), type_="check")
        batch_op.create_check_constraint(op.f(STATUS_CHECK), f"status IN {STATUSES!r}")
    with op.batch_alter_table("payouts") as batch_op:  # an unknown credit's return has no deal
        batch_op.alter_column("deal_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_check_constraint(op.f(DEAL_OR_RETURN), "deal_id IS NOT NULL OR purpose = 'return'")


def downgrade() -> None:
    with op.batch_alter_table("payouts") as batch_op:
        batch_op.drop_constraint(op.f(DEAL_OR_RETURN), type_="check")
        batch_op.alter_column("deal_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("reconciliation_items") as batch_op:
        batch_op.drop_constraint(op.f(STATUS_CHECK), type_="check")
        batch_op.create_check_constraint(op.f(STATUS_CHECK), f"status IN {OLD_STATUSES!r}")
        batch_op.drop_column("exception_id")
    with op.batch_alter_table("reconciliation_runs") as batch_op:
        batch_op.drop_column("ledger_balance_fen")
        batch_op.drop_column("closing_balance_fen")
    op.drop_index("ix_reconciliation_exceptions_bank_day", "reconciliation_exceptions")
    op.drop_table("reconciliation_exceptions")
