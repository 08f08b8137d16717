"""The audit log is written unchained (issue 21): entries carry their writer, the writer's counter and a tail MAC,
and a worker chains them later (`seq`, the place in the chain, 1, 2, 3… without gaps; `id` is now only the order
rows were written in, from a sequence). Existing entries were chained when written: `seq` = `id`. The append-only
triggers now allow exactly one update: the chaining of an unchained entry.

Revision ID: 0049
Revises: 0047
Create Date: 2026-12-05 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import append_only

revision = "0049"
down_revision = "0047"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    dialect = connection.dialect.name
    for statement in append_only.statements(dialect, drop=True):
        connection.exec_driver_sql(statement)
    with op.batch_alter_table("audit_log") as table:
        table.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        table.add_column(sa.Column("writer", sa.String(48), nullable=True))
        table.add_column(sa.Column("writer_seq", sa.Integer(), nullable=True))
        table.add_column(sa.Column("tail_mac", sa.String(64), nullable=True))
        table.alter_column("prev_hash", existing_type=sa.String(64), nullable=True)
        table.alter_column("hash", existing_type=sa.String(64), nullable=True)
    connection.execute(sa.text("UPDATE audit_log SET seq = id"))
    with op.batch_alter_table("audit_log") as table:
        table.create_unique_constraint(op.f("uq_audit_log_seq"), ["seq"])
        table.create_unique_constraint(op.f("uq_audit_log_writer_writer_seq"), ["writer", "writer_seq"])
    op.create_index(
        "ix_audit_log_unchained",
        "audit_log",
        ["id"],
        postgresql_where=sa.text("seq IS NULL"),
        sqlite_where=sa.text("seq IS NULL"),
    )
    if dialect == "postgresql":  # SQLite's INTEGER PRIMARY KEY numbers new rows already
        connection.exec_driver_sql("CREATE SEQUENCE audit_log_id_seq OWNED BY audit_log.id")
        connection.exec_driver_sql("SELECT setval('audit_log_id_seq', coalesce(max(id), 0) + 1, false) FROM audit_log")
        connection.exec_driver_sql("ALTER TABLE audit_log ALTER COLUMN id SET DEFAULT nextval('audit_log_id_seq')")
    for statement in append_only.statements(dialect, chaining=True):
        connection.exec_driver_sql(statement)


def downgrade() -> None:
    """Needs every entry chained with `seq` = `id` (run a worker first); refuses otherwise."""
    connection = op.get_bind()
    dialect = connection.dialect.name
    if connection.scalar(sa.text("SELECT count(*) FROM audit_log WHERE seq IS NULL OR seq <> id")):
        raise RuntimeError("audit_log holds entries not chained in row order: chain them before downgrading")
    for statement in append_only.statements(dialect, drop=True):
        connection.exec_driver_sql(statement)
    if dialect == "postgresql":
        connection.exec_driver_sql("ALTER TABLE audit_log ALTER COLUMN id DROP DEFAULT")
        connection.exec_driver_sql("DROP SEQUENCE audit_log_id_seq")
    op.drop_index("ix_audit_log_unchained", "audit_log")
    with op.batch_alter_table("audit_log") as table:
        table.drop_constraint(op.f("uq_audit_log_writer_writer_seq"), type_="unique")
        table.drop_constraint(op.f("uq_audit_log_seq"), type_="unique")
        table.drop_column("tail_mac")
        table.drop_column("writer_seq")
        table.drop_column("writer")
        table.drop_column("seq")
        table.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        table.alter_column("hash", existing_type=sa.String(64), nullable=False)
    for statement in append_only.statements(dialect):
        connection.exec_driver_sql(statement)
