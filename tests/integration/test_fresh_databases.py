"""The tests' fresh databases: on PostgreSQL a schema that held the platform's tables is emptied and reused
(tests/conftest.py `_PlatformSchemas`); the next test must find it as `create_all` made it - no rows, sequences
from their start - and a schema whose catalog a test changed is never reused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db.session import Database
from tests.conftest import DATABASES, PLATFORM_SCHEMAS, create_schema, fresh_database


def _make_tables(url: str, sqlite_schema: sqlite3.Connection) -> None:
    database = Database(url)
    try:
        create_schema(database.engine, sqlite_schema)
    finally:
        database.dispose()


def _add_user(url: str, name: str) -> int:
    database = Database(url)
    try:
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (username, display_name, password_hash, role, active, session_version,"
                    " created_at) VALUES (:name, :name, '!', 'ops', true, 1, CURRENT_TIMESTAMP)"
                ),
                {"name": name},
            )
            return connection.execute(text("SELECT id FROM users WHERE username = :name"), {"name": name}).scalar_one()
    finally:
        database.dispose()


@pytest.mark.parametrize("kind", DATABASES)
def test_a_reused_database_has_no_rows_and_counts_from_the_start(
    kind: str, tmp_path: Path, sqlite_schema: sqlite3.Connection
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with fresh_database(kind, tmp_path / "one", platform_tables=True) as first:
        _make_tables(first, sqlite_schema)
        assert _add_user(first, "first") == 1
        assert _add_user(first, "second") == 2
    with fresh_database(kind, tmp_path / "two", platform_tables=True) as second:
        if kind == "postgresql":
            assert second == first, "the emptied schema is handed out again"
        _make_tables(second, sqlite_schema)
        database = Database(second)
        try:
            with database.engine.connect() as connection:
                assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
        finally:
            database.dispose()
        assert _add_user(second, "again") == 1


@pytest.mark.parametrize("kind", [kind for kind in DATABASES if kind == "postgresql"] or ["sqlite"])
def test_a_schema_whose_catalog_a_test_changed_is_dropped_not_reused(
    kind: str, tmp_path: Path, sqlite_schema: sqlite3.Connection
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with fresh_database(kind, tmp_path / "one", platform_tables=True) as changed:
        _make_tables(changed, sqlite_schema)
        database = Database(changed)
        try:
            if kind == "postgresql":
                with database.engine.begin() as connection:
                    connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"))
        finally:
            database.dispose()
    if kind == "postgresql":
        schema = changed.rsplit("%3D", 1)[1]
        assert schema not in PLATFORM_SCHEMAS.free
    with fresh_database(kind, tmp_path / "two", platform_tables=True) as other:
        assert other != changed
