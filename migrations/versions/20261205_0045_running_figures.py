"""The console's running totals (issue 21): `figure_totals` (folded) and `figure_deltas` (appended by triggers in
every transaction that moves a deal's custody balance or a deal's state), filled from the book as it stands.

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-05 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import figure_triggers

revision = "0045"
down_revision = "0044"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "figure_totals",
        sa.Column("figure", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "figure_deltas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("figure", sa.String(16), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
    )
    connection = op.get_bind()
    dialect = connection.dialect.name
    # the book as it stands, then the triggers (no writer runs during a migration)
    recount = figure_triggers.recount_sql(dialect)
    connection.execute(
        sa.text(f"INSERT INTO figure_totals (figure, key, value) SELECT * FROM ({recount}) AS f WHERE value <> 0")
    )
    for statement in figure_triggers.statements(dialect):
        connection.exec_driver_sql(statement)


def downgrade() -> None:
    for statement in figure_triggers.statements(op.get_bind().dialect.name, drop=True):
        op.get_bind().exec_driver_sql(statement)
    op.drop_table("figure_deltas")
    op.drop_table("figure_totals")
