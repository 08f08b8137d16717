"""Account openings paced by a sliding-window log of the bank's last sends instead of a token bucket, which let
up to twice a bank's per-second limit into one second of the bank's window (issue 21).

Revision ID: 0037
Revises: 0030
Create Date: 2026-12-05 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0037"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bank_rate_limits") as batch:
        batch.add_column(sa.Column("sends", sa.Text(), nullable=False, server_default="[]"))
        batch.drop_column("tokens_milli")
        batch.drop_column("refreshed_at")


def downgrade() -> None:
    with op.batch_alter_table("bank_rate_limits") as batch:
        batch.add_column(sa.Column("tokens_milli", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_column("sends")
