"""payouts submitted before the watchdog existed get their check_payout job (due at once)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-23 23:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

payouts = sa.table("payouts", sa.column("payout_id", sa.String), sa.column("status", sa.String))
jobs = sa.table(
    "jobs",
    sa.column("kind", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("status", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("max_attempts", sa.Integer),
    sa.column("run_after", sa.DateTime(timezone=True)),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    connection = op.get_bind()
    waiting = connection.scalars(sa.select(payouts.c.payout_id).where(payouts.c.status == "submitted")).all()
    now = datetime.now(UTC)
    if waiting:
        connection.execute(
            jobs.insert(),
            [
                {
                    "kind": "check_payout",
                    "payload": {"payout_id": payout_id},
                    "status": "pending",
                    "attempts": 0,
                    "max_attempts": 12,
                    "run_after": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for payout_id in waiting
            ],
        )


def downgrade() -> None:
    """The jobs stay: a check of a payout is harmless whatever the schema."""
