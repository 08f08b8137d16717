"""four eyes: role grants approved by a second administrator, one-time passwords and session versions of
users, a suspense match proposed by one finance user and approved by another

Revision ID: 0018
Revises: 0021
Create Date: 2026-12-04 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0021"
branch_labels = None
depends_on = None

PENDING = "status = 'pending'"


def upgrade() -> None:
    # plain ADD COLUMNs, no table copy: on SQLite, copying `users` or `suspense_items` would mean dropping a
    # table other rows refer to, which the foreign keys refuse
    op.add_column("users", sa.Column("role_approved", sa.Boolean(), server_default="1", nullable=False))
    op.add_column("users", sa.Column("must_change_password", sa.Boolean(), server_default="0", nullable=False))
    op.add_column("users", sa.Column("session_version", sa.Integer(), server_default="1", nullable=False))
    op.add_column("suspense_items", sa.Column("proposed_deal_no", sa.String(length=32), nullable=True))
    op.add_column("suspense_items", sa.Column("proposed_reason", sa.String(length=256), nullable=True))
    op.add_column("suspense_items", sa.Column("proposed_by", sa.String(length=64), nullable=True))
    op.add_column("suspense_items", sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "role_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("previous_role", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name=op.f("ck_role_grants_status_known")),
        sa.CheckConstraint(
            "decided_by IS NULL OR decided_by <> proposed_by", name=op.f("ck_role_grants_four_eyes")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_role_grants_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_grants")),
    )
    op.create_index(
        "uq_role_grants_pending",
        "role_grants",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_index("uq_role_grants_pending", table_name="role_grants")
    op.drop_table("role_grants")
    for column in ("proposed_at", "proposed_by", "proposed_reason", "proposed_deal_no"):
        op.drop_column("suspense_items", column)
    for column in ("session_version", "must_change_password", "role_approved"):
        op.drop_column("users", column)
