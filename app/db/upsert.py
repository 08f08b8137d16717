"""INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL: create a row unless it exists, race-free."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def insert_if_absent(session: Session, table: Table, values: dict[str, Any]) -> bool:
    """True when the row was inserted; False when a row with the same key (any unique constraint)
    already existed - then nothing is written, and a concurrent insert is waited for, not failed."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    key = next(iter(table.primary_key.columns))
    statement = insert(table).values(**values).on_conflict_do_nothing().returning(key)
    return session.execute(statement).first() is not None
