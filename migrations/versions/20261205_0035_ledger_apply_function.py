"""PostgreSQL: ledger_apply, one ledger operation (posting, hold, post or void of a hold) in one round trip
with the batch engine's rules and result codes (issue 21). SQLite: nothing (the batch engine runs it).

Revision ID: 0035
Revises: 0028
Create Date: 2026-12-05 00:00:00
"""

from __future__ import annotations

from alembic import op

from app.db import ledger_function

revision = "0035"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in ledger_function.statements(op.get_bind().dialect.name):
        op.get_bind().exec_driver_sql(statement)


def downgrade() -> None:
    for statement in ledger_function.statements(op.get_bind().dialect.name, drop=True):
        op.get_bind().exec_driver_sql(statement)
