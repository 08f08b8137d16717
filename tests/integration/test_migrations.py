"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from app.db import ledger_function
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
            functions = {}
            if connection.dialect.name == "postgresql":  # migration 0035: one ledger operation, one call
                query = "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = current_schema()::regnamespace"
                functions = {name: source for name, source in connection.execute(text(query))}
    finally:
        engine.dispose()
    assert differences == []
    assert {"deals", "ledger_transfers", "jobs", "bank_notifications", "seen_nonces"} <= tables
    if engine.dialect.name == "postgresql":  # the body create_all installs (migration 0060's last)
        assert "ledger_apply" in functions
        assert functions["ledger_apply"] == ledger_function.CREATE.split("$fn$")[1]


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
        with engine.connect() as connection:  # migration 0049: entries chained when written keep their place
            places = connection.execute(text("SELECT seq, writer FROM audit_log ORDER BY id")).all()
        assert places == [(1, None), (2, None)]
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text("UPDATE audit_log SET mac = NULL"))
    finally:
        engine.dispose()


def test_running_figures_start_from_the_book_as_it_stands(database_url: str) -> None:
    """Migration 0045: deals and custody balances already there are in the running totals from the start, and
    what moves afterwards moves them (the triggers are in place)."""
    from app.figures import totals

    config = alembic_config(database_url)
    command.upgrade(config, "0044")
    engine = create_engine(database_url)  # a plain engine: SQLite leaves foreign keys off
    deal = (
        "INSERT INTO deals (id, deal_no, city_code, product, bank_code, workflow_id, workflow_version,"
        " city_config_sha256, agreement_template, state, version, buyer_name, buyer_id_number, price_fen,"
        " custody_amount_fen, facts, created_by_id, created_at, updated_at) VALUES (:id, :no, :city, 'resale_escrow',"
        " 'ceb', 'resale_escrow', 1, 'x', 'resale_escrow/v1', :state, 1, 'x', 'x', 100, 100, '{}', 1,"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    account = (
        "INSERT INTO ledger_accounts (id, code, type, name, debits_must_not_exceed_credits,"
        " credits_must_not_exceed_debits, debits_posted, credits_posted, deal_id, created_at)"
        " VALUES (:id, :code, 'liability', 'x', true, false, :debits, :credits, :deal, CURRENT_TIMESTAMP)"
    )
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":  # no user rows: this test is about deals and accounts
                connection.execute(text("SET LOCAL session_replication_role = replica"))
            for n, (city, state) in enumerate((("110000", "funded"), ("310000", "funded"), ("110000", "closed")), 1):
                connection.execute(text(deal), {"id": n, "no": f"D{n}", "city": city, "state": state})
            for n, (debits, credits) in enumerate(((0, 500), (100, 300), (0, 0)), 1):
                values = {"id": n, "code": f"custody:D{n}", "debits": debits, "credits": credits, "deal": n}
                connection.execute(text(account), values)
        command.upgrade(config, "head")
        with engine.begin() as connection:
            kept = totals.read(connection)
            assert kept == totals.recount(connection)
            assert {(k.city_code, v) for k, v in kept.custody.items()} == {("110000", 500), ("310000", 200)}
            assert {(k.state, v) for k, v in kept.deals.items()} == {("funded", 2), ("closed", 1)}
            connection.execute(text("UPDATE ledger_accounts SET credits_posted = 900 WHERE id = 1"))
            connection.execute(text("UPDATE deals SET state = 'closed' WHERE id = 2"))
            moved = totals.read(connection)
        assert {(k.city_code, v) for k, v in moved.custody.items()} == {("110000", 900), ("310000", 200)}
        assert {(k.state, v) for k, v in moved.deals.items()} == {("closed", 2), ("funded", 1)}
    finally:
        engine.dispose()
