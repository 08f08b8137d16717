"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from app.db.base import Base
from app.db.session import make_engine
from app.platform.cli import alembic_config


def test_upgrade_head_matches_models(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
            tables = set(inspect(connection).get_table_names())
            functions = set()
            if connection.dialect.name == "postgresql":  # migration 0035: one ledger operation, one call
                query = "SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace"
                functions = set(connection.scalars(text(query)))
    finally:
        engine.dispose()
    assert differences == []
    assert {"deals", "ledger_transfers", "jobs", "bank_notifications", "seen_nonces"} <= tables
    if engine.dialect.name == "postgresql":
        assert "ledger_apply" in functions


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


def test_payouts_submitted_before_the_watchdog_get_their_check(database_url: str) -> None:
    """Migration 0016: a payout already at the bank when the watchdog came gets its check (due at once)."""
    config = alembic_config(database_url)
    command.upgrade(config, "0015")
    engine = create_engine(database_url)  # a plain engine: SQLite leaves foreign keys off
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":  # no deal rows: this test is about the payouts alone
                connection.execute(text("SET LOCAL session_replication_role = replica"))
            for payout_id, status in (("PO-1", "submitted"), ("PO-2", "succeeded"), ("PO-3", "pending")):
                connection.execute(
                    text(
                        "INSERT INTO payouts (payout_id, deal_id, bank_code, amount_fen, payee_name, payee_account,"
                        " status, created_at, updated_at) VALUES"
                        " (:payout_id, 1, 'ceb', 100, '李四', 'x', :status, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"payout_id": payout_id, "status": status},
                )
        command.upgrade(config, "0016")  # (later migrations rebuild payouts, whose deal rows this test has not)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT kind, payload, status, attempts FROM jobs")).all()
    finally:
        engine.dispose()
    checks = [(kind, json.loads(p) if isinstance(p, str) else p, status, n) for kind, p, status, n in rows]
    assert checks == [("check_payout", {"payout_id": "PO-1"}, "pending", 0)]


def test_audit_entries_from_before_the_mac_get_theirs_and_stay_append_only(database_url: str, keys_dir: Path) -> None:
    """Migration 0019: an intact chain written before MACs existed gets them (the key loaded, as by flask db
    upgrade); the append-only triggers are back afterwards."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from app.audit.mac_key import mac_key
    from app.db.base import UTCDateTime
    from app.domain.audit import GENESIS, EntryContent, chain_hash, entry_mac

    config = alembic_config(database_url)
    command.upgrade(config, "0016")
    old_log = sa.table(
        "audit_log",
        *(sa.column(name, sa.String) for name in ("actor", "action", "subject", "prev_hash", "hash")),
        sa.column("id", sa.Integer),
        sa.column("at", UTCDateTime()),
        *(sa.column(name, sa.JSON) for name in ("before", "after", "detail")),
    )
    prev, rows = GENESIS, []
    for number in (1, 2):
        content = EntryContent(
            number,
            datetime(2026, 12, 1, number, tzinfo=UTC),
            "user:admin",
            "user.create",
            f"user:u{number}",
            None,
            {"role": "ops"},
            {},
        )
        entry_hash = chain_hash(prev, content)
        rows.append({**vars(content), "prev_hash": prev, "hash": entry_hash})
        prev = entry_hash
    engine = create_engine(database_url)
    assert mac_key.configure_from_folder(keys_dir)
    try:
        with engine.begin() as connection:
            connection.execute(old_log.insert(), rows)
        command.upgrade(config, "head")
        with engine.connect() as connection:
            macs = connection.execute(text("SELECT hash, mac FROM audit_log ORDER BY id")).all()
        assert [mac for _, mac in macs] == [entry_mac(mac_key.key(), entry_hash) for entry_hash, _ in macs]
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text("UPDATE audit_log SET mac = NULL"))
    finally:
        engine.dispose()
