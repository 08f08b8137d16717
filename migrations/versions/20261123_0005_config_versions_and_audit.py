"""city config versions, simulations, pinned snapshots; the append-only audit log

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import append_only

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATUSES = "('draft', 'submitted', 'approved', 'rejected', 'published', 'retired')"


def upgrade() -> None:
    op.create_table(
        "city_config_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city_code", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_city_config_versions_status_known")),
        sa.CheckConstraint("version > 0", name=op.f("ck_city_config_versions_version_positive")),
        sa.UniqueConstraint("city_code", "version", name=op.f("uq_city_config_versions_city_code_version")),
    )
    op.create_index(
        "uq_city_config_versions_one_published",
        "city_config_versions",
        ["city_code"],
        unique=True,
        sqlite_where=sa.text("status = 'published'"),
        postgresql_where=sa.text("status = 'published'"),
    )
    op.create_table(
        "config_simulations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city_code", sa.String(16), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("resolved_sha256", sa.String(64), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("run_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_config_simulations_content_sha256", "config_simulations", ["content_sha256"])
    op.create_table(
        "city_config_snapshots",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("city_code", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("layers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_log_prev_hash")),
    )
    for statement in append_only.statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in append_only.statements(op.get_bind().dialect.name, drop=True):
        op.execute(statement)
    op.drop_table("audit_log")
    op.drop_table("city_config_snapshots")
    op.drop_index("ix_config_simulations_content_sha256", "config_simulations")
    op.drop_table("config_simulations")
    op.drop_index("uq_city_config_versions_one_published", "city_config_versions")
    op.drop_table("city_config_versions")
