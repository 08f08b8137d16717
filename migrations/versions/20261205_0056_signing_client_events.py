"""Party signing: `signing_client_events`, what each client address (as its SM3) did to any signing link within
the hour, for the per-address limits on code sends and failed real-name checks that every web process shares.

Revision ID: 0056
Revises: 0054
Create Date: 2026-12-05 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0056"
down_revision = "0054"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_client_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_signing_client_events_client", "signing_client_events", ["client", "kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_signing_client_events_client", table_name="signing_client_events")
    op.drop_table("signing_client_events")
