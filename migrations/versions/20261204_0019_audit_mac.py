"""audit mac: each audit entry's HMAC-SM3 under a key kept out of the database

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 08:00:00

Existing entries get their MAC here when the key is loaded (`flask db upgrade` loads it from the key folder),
after their chain has been checked: only an intact chain is vouched for. Without the key (plain `alembic
upgrade`) they stay without one and `flask audit verify` reports each as 缺少 MAC.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("mac", sa.String(length=64), nullable=True))
    _backfill()


def _backfill() -> None:
    from app.audit.mac_key import mac_key
    from app.db import append_only
    from app.db.base import UTCDateTime
    from app.domain.audit import EntryContent, StoredEntry, entry_mac, verify_chain
    from app.platform.errors import ConfigError

    audit_log = sa.table(
        "audit_log",
        *(sa.column(name, sa.Integer if name == "id" else sa.String) for name in ("id", "actor", "action", "subject")),
        sa.column("at", UTCDateTime()),
        *(sa.column(name, sa.JSON) for name in ("before", "after", "detail")),
        *(sa.column(name, sa.String) for name in ("prev_hash", "hash")),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(audit_log).order_by(audit_log.c.id)).all()
    if not rows:
        return
    try:
        key = mac_key.key()
    except ConfigError:
        log.warning("audit log: %d entries left without a MAC (the key was not loaded: use flask db upgrade)", len(rows))
        return
    entries = [
        StoredEntry(
            EntryContent(r.id, r.at, r.actor, r.action, r.subject, r.before, r.after, r.detail), r.prev_hash, r.hash
        )
        for r in rows
    ]
    if verify_chain(entries)[1]:
        log.warning("audit log: the chain is broken, no MAC written (flask audit verify shows where)")
        return
    dialect = connection.dialect.name
    for statement in append_only.statements(dialect, drop=True):
        connection.exec_driver_sql(statement)
    connection.execute(
        sa.text("UPDATE audit_log SET mac = :mac WHERE id = :id"),
        [{"id": row.id, "mac": entry_mac(key, row.hash)} for row in rows],
    )
    for statement in append_only.statements(dialect):
        connection.exec_driver_sql(statement)


def downgrade() -> None:
    op.drop_column("audit_log", "mac")
