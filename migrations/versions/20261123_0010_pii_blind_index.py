"""pii blind index: parties' phones (encrypted) and keyed SM3 blind indexes of ID numbers and phones

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 20:00:00

Existing deals are indexed here when the keys are loaded (`flask db upgrade` loads them from the key
folder). Without them (plain `alembic upgrade`) the columns stay empty and the migration says so: run
`flask pii reindex`, which fills every blind index from the decrypted values.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_INDEXES = (
    ("buyer_id_bidx", "buyer_id_number", "id"),
    ("seller_id_bidx", "seller_id_number", "id"),
    ("buyer_phone_bidx", "buyer_phone", "phone"),
    ("seller_phone_bidx", "seller_phone", "phone"),
)
log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("buyer_phone", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("seller_phone", sa.String(length=512), nullable=True))
        for column, _, _ in _INDEXES:
            batch.add_column(sa.Column(column, sa.String(length=64), nullable=True))
            batch.create_index(f"ix_deals_{column}", [column], unique=False)
    _backfill()


def _backfill() -> None:
    from app.db.pii import keyring
    from app.platform.errors import ConfigError

    connection = op.get_bind()
    sources = ", ".join(source for _, source, _ in _INDEXES)
    rows = connection.execute(sa.text(f"SELECT id, {sources} FROM deals")).all()
    missed = 0
    for row in rows:
        try:
            values = {
                column: keyring.blind_index(kind, keyring.decrypt(stored)) if stored else None  # type: ignore[arg-type]
                for (column, _, kind), stored in zip(_INDEXES, row[1:], strict=True)
            }
        except ConfigError:  # keys not loaded here: `flask pii reindex` does the same later
            missed += 1
            continue
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        connection.execute(sa.text(f"UPDATE deals SET {assignments} WHERE id = :id"), {**values, "id": row[0]})
    if missed:
        log.warning("PII blind indexes not filled for %d deals (keys not loaded): run `flask pii reindex`", missed)


def downgrade() -> None:
    with op.batch_alter_table("deals") as batch:
        for column, _, _ in reversed(_INDEXES):
            batch.drop_index(f"ix_deals_{column}")
            batch.drop_column(column)
        batch.drop_column("seller_phone")
        batch.drop_column("buyer_phone")
