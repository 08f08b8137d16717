"""Database triggers that refuse UPDATE and DELETE of ledger transfers: corrections are new transfers."""

from __future__ import annotations

SQLITE = (
    "CREATE TRIGGER ledger_transfers_no_update BEFORE UPDATE ON ledger_transfers "
    "BEGIN SELECT RAISE(ABORT, 'ledger transfers are immutable'); END",
    "CREATE TRIGGER ledger_transfers_no_delete BEFORE DELETE ON ledger_transfers "
    "BEGIN SELECT RAISE(ABORT, 'ledger transfers are immutable'); END",
)
SQLITE_DROP = ("DROP TRIGGER ledger_transfers_no_update", "DROP TRIGGER ledger_transfers_no_delete")

POSTGRESQL = (
    "CREATE FUNCTION ledger_transfers_immutable() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'ledger transfers are immutable' USING ERRCODE = 'restrict_violation'; END $$",
    "CREATE TRIGGER ledger_transfers_no_change BEFORE UPDATE OR DELETE ON ledger_transfers "
    "FOR EACH ROW EXECUTE FUNCTION ledger_transfers_immutable()",
    "CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_immutable()",
)
POSTGRESQL_DROP = (
    "DROP TRIGGER ledger_transfers_no_truncate ON ledger_transfers",
    "DROP TRIGGER ledger_transfers_no_change ON ledger_transfers",
    "DROP FUNCTION ledger_transfers_immutable()",
)


def statements(dialect: str, *, drop: bool = False) -> tuple[str, ...]:
    if dialect == "sqlite":
        return SQLITE_DROP if drop else SQLITE
    if dialect == "postgresql":
        return POSTGRESQL_DROP if drop else POSTGRESQL
    raise ValueError(f"no immutability triggers for dialect {dialect!r}")
