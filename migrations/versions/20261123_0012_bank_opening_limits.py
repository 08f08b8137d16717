"""admins set a bank's account-opening limits

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_opening_limits",
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("per_second", sa.Integer(), nullable=False),
        sa.Column("per_day", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "per_second > 0 AND per_day >= per_second", name=op.f("ck_bank_opening_limits_limits_positive")
        ),
        sa.PrimaryKeyConstraint("bank_code", name=op.f("pk_bank_opening_limits")),
    )


def downgrade() -> None:
    op.drop_table("bank_opening_limits")
