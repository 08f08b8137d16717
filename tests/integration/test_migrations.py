"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from app.cli import alembic_config
from app.db.base import Base
from app.db.session import make_engine


def test_upgrade_head_matches_models(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert differences == []
    assert {"deals", "ledger_transfers", "jobs", "bank_notifications", "seen_nonces"} <= tables


def test_migrated_database_refuses_changes_to_transfers(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO ledger_accounts (id, code, type, name, debits_must_not_exceed_credits,"
                    " credits_must_not_exceed_debits, debits_posted, credits_posted, created_at) VALUES"
                    " (1, 'a', 'asset', 'a', false, false, 5, 0, CURRENT_TIMESTAMP),"
                    " (2, 'b', 'liability', 'b', false, false, 0, 5, CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount_fen, code,"
                    " created_at) VALUES ('t1', 1, 2, 5, 'arrival', CURRENT_TIMESTAMP)"
                )
            )
        with pytest.raises(Exception, match="immutable"), engine.begin() as connection:
            connection.execute(text("UPDATE ledger_transfers SET amount_fen = 6"))
        with pytest.raises(Exception, match="immutable"), engine.begin() as connection:
            connection.execute(text("DELETE FROM ledger_transfers"))
    finally:
        engine.dispose()
