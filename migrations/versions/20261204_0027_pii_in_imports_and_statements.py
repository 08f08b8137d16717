"""PII at rest, continued: imported contracts' numbers (unique per city through their blind index now) and
statement lines' counterparty names SM4-encrypted.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 13:40:00

Existing rows are encrypted with the keys `flask db upgrade` loads; without them on a database holding such
rows the migration stops (as 0026 does).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

ENCRYPTED = sa.String(length=512)
OLD_UNIQUE, NEW_UNIQUE = "uq_imported_contracts_city_code_contract_no", "uq_imported_contracts_city_code_contract_bidx"


def _keyring():  # type: ignore[no-untyped-def]
    from app.db.pii import keyring
    from app.platform.errors import ConfigError

    if not keyring.configured:
        connection = op.get_bind()
        for table in ("imported_contracts", "reconciliation_items"):
            if connection.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None:
                raise ConfigError(
                    "迁移 0027 需加密已有个人信息：请用 flask db upgrade（会加载密钥目录）运行",
                    code="PII_KEY_MISSING",
                    details={"table": table},
                )
    return keyring


def upgrade() -> None:
    keyring = _keyring()
    connection = op.get_bind()
    with op.batch_alter_table("reconciliation_items") as batch:
        batch.alter_column("counterparty_name", existing_type=sa.String(length=128), type_=ENCRYPTED)
    with op.batch_alter_table("imported_contracts") as batch:
        batch.drop_constraint(OLD_UNIQUE, type_="unique")
        batch.alter_column("contract_no", existing_type=sa.String(length=64), type_=ENCRYPTED)
        batch.add_column(sa.Column("contract_bidx", sa.String(length=64), nullable=True))
    for row_id, name in connection.execute(sa.text("SELECT id, counterparty_name FROM reconciliation_items")).all():
        if name is not None:
            connection.execute(
                sa.text("UPDATE reconciliation_items SET counterparty_name = :name WHERE id = :id"),
                {"name": keyring.encrypt(name), "id": row_id},
            )
    for row_id, number in connection.execute(sa.text("SELECT id, contract_no FROM imported_contracts")).all():
        connection.execute(
            sa.text("UPDATE imported_contracts SET contract_no = :number, contract_bidx = :digest WHERE id = :id"),
            {"number": keyring.encrypt(number), "digest": keyring.blind_index("cert", number), "id": row_id},
        )
    with op.batch_alter_table("imported_contracts") as batch:
        batch.create_unique_constraint(NEW_UNIQUE, ["city_code", "contract_bidx"])


def downgrade() -> None:
    keyring = _keyring()
    connection = op.get_bind()
    for row_id, name in connection.execute(sa.text("SELECT id, counterparty_name FROM reconciliation_items")).all():
        if name is not None:
            connection.execute(
                sa.text("UPDATE reconciliation_items SET counterparty_name = :name WHERE id = :id"),
                {"name": keyring.decrypt(name), "id": row_id},
            )
    for row_id, stored in connection.execute(sa.text("SELECT id, contract_no FROM imported_contracts")).all():
        connection.execute(
            sa.text("UPDATE imported_contracts SET contract_no = :number WHERE id = :id"),
            {"number": keyring.decrypt(stored), "id": row_id},
        )
    with op.batch_alter_table("imported_contracts") as batch:
        batch.drop_constraint(NEW_UNIQUE, type_="unique")
        batch.drop_column("contract_bidx")
        batch.alter_column("contract_no", existing_type=ENCRYPTED, type_=sa.String(length=64))
        batch.create_unique_constraint(OLD_UNIQUE, ["city_code", "contract_no"])
    with op.batch_alter_table("reconciliation_items") as batch:
        batch.alter_column("counterparty_name", existing_type=ENCRYPTED, type_=sa.String(length=128))
