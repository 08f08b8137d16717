"""form drafts: an agent's unfinished intake form, the typed values SM4-encrypted as one JSON

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "form_drafts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("city_code", sa.String(6), nullable=False),
        sa.Column("product", sa.String(32), nullable=False),
        sa.Column("values_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_form_drafts_owner_id", "form_drafts", ["owner_id"])


def downgrade() -> None:
    op.drop_index("ix_form_drafts_owner_id", table_name="form_drafts")
    op.drop_table("form_drafts")
