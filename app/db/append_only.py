"""Database triggers that keep the audit log append-only: UPDATE, DELETE (and TRUNCATE) are refused."""

from __future__ import annotations

TABLE = "audit_log"

SQLITE = (
    f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)
SQLITE_DROP = (f"DROP TRIGGER {TABLE}_no_update", f"DROP TRIGGER {TABLE}_no_delete")

POSTGRESQL = (
    f"CREATE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'restrict_violation'; END $$",
    f"CREATE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
    f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()",
    f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_append_only()",
)
POSTGRESQL_DROP = (
    f"DROP TRIGGER {TABLE}_no_truncate ON {TABLE}",
    f"DROP TRIGGER {TABLE}_no_change ON {TABLE}",
    f"DROP FUNCTION {TABLE}_append_only()",
)


def statements(dialect: str, *, drop: bool = False) -> tuple[str, ...]:
    if dialect == "sqlite":
        return SQLITE_DROP if drop else SQLITE
    if dialect == "postgresql":
        return POSTGRESQL_DROP if drop else POSTGRESQL
    raise ValueError(f"no append-only triggers for dialect {dialect!r}")
