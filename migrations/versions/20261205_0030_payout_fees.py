"""payouts.fees: the fees a release pays out of its gross, by fee rule (issue 17, fees)

Revision ID: 0030
Revises: 0035
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN: on SQLite a table copy of `payouts` would drop a table other rows refer to
    op.add_column("payouts", sa.Column("fees", sa.JSON(), server_default="{}", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("payouts") as batch:
        batch.drop_column("fees")
