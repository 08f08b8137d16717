"""jobs.bank_code: the bank a job calls, so that a worker runs only so many of one bank's jobs at once and a
bank that stalls holds up only its own jobs (issue 21). Jobs queued before this have none (no limit applies).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("bank_code", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("bank_code")
