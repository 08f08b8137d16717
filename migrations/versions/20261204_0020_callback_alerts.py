"""callback edges: the body hash of each stored notification, and the callback alerts kept for review

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 08:00:00

Notifications stored before have no hash: the platform hashes their stored body when it needs to compare.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bank_notifications") as batch:
        batch.add_column(sa.Column("body_sm3", sa.String(length=64), nullable=True))
    op.create_table(
        "callback_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("notification_id", sa.String(length=64), nullable=False),
        sa.Column("body_sm3", sa.String(length=64), nullable=False),
        sa.Column("raw_body", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_alerts")),
        sa.UniqueConstraint(
            "bank_code", "notification_id", "body_sm3", name=op.f("uq_callback_alerts_bank_code_notification_id_body_sm3")
        ),
    )


def downgrade() -> None:
    op.drop_table("callback_alerts")
    with op.batch_alter_table("bank_notifications") as batch:
        batch.drop_column("body_sm3")
