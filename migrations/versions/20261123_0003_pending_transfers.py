"""pending transfers: holds with post/void, pending totals on accounts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:46:27.826375
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import immutability

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ACCOUNT_CHECKS_BEFORE = {
    "totals_non_negative": "debits_posted >= 0 AND credits_posted >= 0",
    "debits_within_credits": "NOT debits_must_not_exceed_credits OR debits_posted <= credits_posted",
    "credits_within_debits": "NOT credits_must_not_exceed_debits OR credits_posted <= debits_posted",
}
ACCOUNT_CHECKS_AFTER = {
    "totals_non_negative": (
        "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0"
    ),
    "debits_within_credits": "NOT debits_must_not_exceed_credits OR debits_posted + debits_pending <= credits_posted",
    "credits_within_debits": "NOT credits_must_not_exceed_debits OR credits_posted + credits_pending <= debits_posted",
}
TRANSFER_CHECKS = {
    "kind_known": "kind IN ('single','pending','post_pending','void_pending')",
    "resolution_names_pending": "(kind IN ('post_pending','void_pending')) = (pending_id IS NOT NULL)",
    "timeout_only_on_pending": "kind = 'pending' OR timeout_at IS NULL",
}


def _replace_account_checks(checks: dict[str, str]) -> None:
    with op.batch_alter_table("ledger_accounts") as batch_op:
        for name, condition in checks.items():
            batch_op.drop_constraint(op.f(f"ck_ledger_accounts_{name}"), type_="check")
            batch_op.create_check_constraint(name, condition)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("ledger_accounts") as batch_op:
        batch_op.add_column(sa.Column("debits_pending", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("credits_pending", sa.BigInteger(), server_default="0", nullable=False))
    _replace_account_checks(ACCOUNT_CHECKS_AFTER)
    if dialect == "sqlite":  # batch mode rebuilds the table, which drops its triggers
        for statement in immutability.statements(dialect, drop=True):
            op.execute(statement)
    with op.batch_alter_table("ledger_transfers") as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="single", nullable=False))
        batch_op.add_column(sa.Column("pending_id", sa.String(length=96), nullable=True))
        batch_op.add_column(sa.Column("timeout_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint("uq_ledger_transfers_pending_id", ["pending_id"])
        batch_op.create_foreign_key(
            "fk_ledger_transfers_pending_id_ledger_transfers", "ledger_transfers", ["pending_id"], ["id"]
        )
        for name, condition in TRANSFER_CHECKS.items():
            batch_op.create_check_constraint(name, condition)
    if dialect == "sqlite":
        for statement in immutability.statements(dialect):
            op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("pending transfers cannot be removed without losing holds; restore a backup instead")
