"""ledger transfers are immutable

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:43:03.530634
"""

from __future__ import annotations

from alembic import op

from app.db import immutability


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in immutability.statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in immutability.statements(op.get_bind().dialect.name, drop=True):
        op.execute(statement)
