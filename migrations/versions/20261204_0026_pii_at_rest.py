"""PII at rest: parties' names, property addresses, certificate numbers, payee and payer names, raw callback
bodies and agreements (HTML and PDF) SM4-encrypted like the other PII columns; a blind index of the
certificate number (is this certificate or contract in custody already?), and the account a callback
concerns kept beside its (now encrypted) body for the admin's list of a deal's callbacks.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 13:00:00

Existing rows are encrypted in place with the keys `flask db upgrade` loads from the key folder. Without
them (plain `alembic upgrade` on a database holding such rows) the migration stops: the application can
read no plain value from an encrypted column, so nothing is changed until the keys are there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

ENCRYPTED = sa.String(length=512)
# the columns whose values are encrypted here, by table
COLUMNS = {
    "deals": ("buyer_name", "seller_name", "property_address", "certificate_no"),
    "payouts": ("payee_name",),
    "suspense_items": ("payer_name",),
    "bank_notifications": ("raw_body",),
    "callback_alerts": ("raw_body",),
    "agreements": ("html", "pdf"),
}
# those that need a wider type for their encrypted form: (table, column, type before, type after, nullable)
RETYPED = (
    ("deals", "buyer_name", sa.String(length=64), ENCRYPTED, False),
    ("deals", "seller_name", sa.String(length=64), ENCRYPTED, True),
    ("deals", "property_address", sa.String(length=256), sa.Text(), True),
    ("deals", "certificate_no", sa.String(length=64), ENCRYPTED, True),
    ("payouts", "payee_name", sa.String(length=64), ENCRYPTED, False),
    ("suspense_items", "payer_name", sa.String(length=64), ENCRYPTED, True),
)

def upgrade() -> None:
    _require_keys_for_rows()
    op.drop_index("ix_deals_certificate_no", table_name="deals")  # encrypted: searched by its blind index
    _retype(lambda before, after: (before, after))
    op.add_column("deals", sa.Column("certificate_bidx", sa.String(length=64), nullable=True))
    op.create_index("ix_deals_certificate_bidx", "deals", ["certificate_bidx"], unique=False)
    op.add_column("bank_notifications", sa.Column("account_no", sa.String(length=40), nullable=True))
    op.create_index("ix_bank_notifications_account", "bank_notifications", ["bank_code", "account_no"], unique=False)
    _accounts_of_callbacks()
    _rewrite_all(_encrypt_text, _encrypt_bytes)
    _index_certificates()


def _retype(order: Callable[[Any, Any], tuple[Any, Any]]) -> None:
    """RETYPED's columns from their type before to their type after (`order` swaps them for the downgrade)."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, name, before, after, nullable in RETYPED:
        existing, new = order(before, after)
        if sqlite:
            _replace_sqlite_column(table, name, new, nullable)
        else:
            op.alter_column(table, name, existing_type=existing, type_=new, existing_nullable=nullable)


def _replace_sqlite_column(table: str, name: str, type_: Any, nullable: bool) -> None:
    """SQLite changes a column's type only by rebuilding the table, which the rows of other tables referring to
    it stop (foreign keys are on): a new column takes the values, then the old one's place and name instead."""
    connection = op.get_bind()
    declared = type_.compile(dialect=connection.dialect) + ("" if nullable else " NOT NULL DEFAULT ''")
    op.execute(f"ALTER TABLE {table} ADD COLUMN _retyped_{name} {declared}")
    op.execute(f"UPDATE {table} SET _retyped_{name} = {name}")
    op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
    op.execute(f"ALTER TABLE {table} RENAME COLUMN _retyped_{name} TO {name}")


def _require_keys_for_rows() -> None:
    from app.db.pii import keyring
    from app.platform.errors import ConfigError

    if keyring.configured:
        return
    connection = op.get_bind()
    for table in COLUMNS:
        if connection.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None:
            raise ConfigError(
                "迁移 0026 需加密已有个人信息：请用 flask db upgrade（会加载密钥目录）运行",
                code="PII_KEY_MISSING",
                details={"table": table},
            )


def _accounts_of_callbacks() -> None:
    """The account each stored callback concerns, read from its body while it is still plain."""
    connection = op.get_bind()
    for row_id, raw_body in connection.execute(sa.text("SELECT id, raw_body FROM bank_notifications")).all():
        account_no = json.loads(raw_body).get("account_no")
        if account_no:
            connection.execute(
                sa.text("UPDATE bank_notifications SET account_no = :account_no WHERE id = :id"),
                {"account_no": account_no, "id": row_id},
            )


def _encrypt_text(value: str) -> str:
    from app.db.pii import keyring

    return keyring.encrypt(value)


def _encrypt_bytes(value: bytes) -> bytes:
    from app.db.pii import keyring

    return keyring.encrypt_bytes(value)


def _decrypt_text(value: str) -> str:
    from app.db.pii import keyring

    return keyring.decrypt(value)


def _decrypt_bytes(value: bytes) -> bytes:
    from app.db.pii import keyring

    return keyring.decrypt_bytes(value)


def _rewrite_all(text_value: Callable[[str], str], bytes_value: Callable[[bytes], bytes]) -> None:
    """Every value of COLUMNS through `text_value` (text) or `bytes_value` (agreements.pdf)."""
    connection = op.get_bind()
    for table, columns in COLUMNS.items():
        rows = connection.execute(sa.text(f"SELECT id, {', '.join(columns)} FROM {table}")).all()
        for row in rows:
            values = {
                column: (text_value(value) if isinstance(value, str) else bytes_value(bytes(value)))
                for column, value in zip(columns, row[1:], strict=True)
                if value is not None
            }
            if values:
                assignments = ", ".join(f"{column} = :{column}" for column in values)
                connection.execute(sa.text(f"UPDATE {table} SET {assignments} WHERE id = :id"), {**values, "id": row[0]})


def _index_certificates() -> None:
    from app.db.pii import keyring

    connection = op.get_bind()
    for row_id, stored in connection.execute(sa.text("SELECT id, certificate_no FROM deals")).all():
        if stored:
            connection.execute(
                sa.text("UPDATE deals SET certificate_bidx = :digest WHERE id = :id"),
                {"digest": keyring.blind_index("cert", keyring.decrypt(stored)), "id": row_id},
            )


def downgrade() -> None:
    _require_keys_for_rows()
    _rewrite_all(_decrypt_text, _decrypt_bytes)
    # plain ALTER TABLE … DROP COLUMN (SQLite 3.35+ too): a batch would rebuild tables other rows refer to
    op.drop_index("ix_bank_notifications_account", table_name="bank_notifications")
    op.drop_column("bank_notifications", "account_no")
    op.drop_index("ix_deals_certificate_bidx", table_name="deals")
    op.drop_column("deals", "certificate_bidx")
    _retype(lambda before, after: (after, before))
    op.create_index("ix_deals_certificate_no", "deals", ["certificate_no"], unique=False)
