"""One publishing flow for workflows, clauses, agreement templates and calendars: their reviewed versions
(`definition_versions`), the simulations approval reads (`definition_simulations`) and the exact versions a
deal started with (`deals.definitions`) (issue 17).

Revision ID: 0034
Revises: 0037
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0037"
branch_labels = None
depends_on = None

STATUSES = "('draft', 'submitted', 'approved', 'rejected', 'published', 'retired')"


def upgrade() -> None:
    op.create_table(
        "definition_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_definition_versions_status_known")),
        sa.CheckConstraint("version > 0", name=op.f("ck_definition_versions_version_positive")),
        sa.CheckConstraint(
            "reviewer IS NULL OR reviewer <> author OR author = 'system'", name=op.f("ck_definition_versions_four_eyes")
        ),
        sa.UniqueConstraint("kind", "name", "version", name=op.f("uq_definition_versions_kind_name_version")),
    )
    op.create_index(
        "uq_definition_versions_one_published",
        "definition_versions",
        ["kind", "name"],
        unique=True,
        sqlite_where=sa.text("status = 'published'"),
        postgresql_where=sa.text("status = 'published'"),
    )
    op.create_index("ix_definition_versions_sha", "definition_versions", ["kind", "content_sha256"])
    op.create_table(
        "definition_simulations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("run_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_definition_simulations_content_sha256", "definition_simulations", ["content_sha256"])
    op.add_column("deals", sa.Column("definitions", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("deals", "definitions")
    op.drop_index("ix_definition_simulations_content_sha256", table_name="definition_simulations")
    op.drop_table("definition_simulations")
    op.drop_index("ix_definition_versions_sha", table_name="definition_versions")
    op.drop_index("uq_definition_versions_one_published", table_name="definition_versions")
    op.drop_table("definition_versions")
