"""Account openings paced by the bank's own stamps (issue 21): each bank's opening window keeps the tightest lower
bound seen of the bank's clock offset from ours (bank stamp - answer arrival) and when it was measured.

Revision ID: 0059
Revises: 0056
Create Date: 2026-12-05 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0059"
down_revision = "0056"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bank_rate_limits") as batch:
        batch.add_column(sa.Column("offset_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("offset_at_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bank_rate_limits") as batch:
        batch.drop_column("offset_at_ms")
        batch.drop_column("offset_ms")
