"""stock rental contracts imported once per city and contract number; deals found by contract number

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imported_contracts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("city_code", sa.String(length=6), nullable=False),
        sa.Column("contract_no", sa.String(length=64), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("source_name", sa.String(length=256), nullable=False),
        sa.Column("row_no", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_imported_contracts_deal_id_deals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_contracts")),
        sa.UniqueConstraint("city_code", "contract_no", name=op.f("uq_imported_contracts_city_code_contract_no")),
        sa.UniqueConstraint("deal_id", name=op.f("uq_imported_contracts_deal_id")),
    )
    op.create_index(op.f("ix_deals_certificate_no"), "deals", ["certificate_no"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_deals_certificate_no"), table_name="deals")
    op.drop_table("imported_contracts")
