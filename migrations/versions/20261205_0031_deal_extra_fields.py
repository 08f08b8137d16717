"""deals.extra_fields: a city's extra form fields as typed, SM4-encrypted like the deal's other personal data
(issue 17, extra fields stored for every product).

Revision ID: 0031
Revises: 0034
Create Date: 2026-12-05 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deals", sa.Column("extra_fields", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("extra_fields")
