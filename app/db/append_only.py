"""Database triggers that keep the audit log append-only: UPDATE, DELETE (and TRUNCATE) are refused.

Since migration 0049 (`chaining=True`) one UPDATE is allowed: the worker chaining an unchained entry, which fills
`seq`, `prev_hash`, `hash` and `mac`, once, and changes nothing else."""

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


_CONTENT = ("id", "at", "actor", "action", "subject", "before", "after", "detail", "writer", "writer_seq", "tail_mac")
_CHAIN = ("seq", "prev_hash", "hash", "mac")
_CHAINING_ONLY = (
    "OLD.seq IS NULL AND NEW.seq IS NOT NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL AND OLD.mac IS NULL"
)

SQLITE_CHAINING = (
    f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} WHEN NOT ({_CHAINING_ONLY} AND "
    + " AND ".join(f"NEW.{name} IS OLD.{name}" for name in _CONTENT)
    + ") BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    SQLITE[1],
)

_WITHOUT_CHAIN = " - ".join(f"'{name}'" for name in _CHAIN)
_SAME_CONTENT = f"(to_jsonb(OLD) - {_WITHOUT_CHAIN}) = (to_jsonb(NEW) - {_WITHOUT_CHAIN})"
POSTGRESQL_CHAINING = (
    f"CREATE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"IF TG_OP = 'UPDATE' AND {_CHAINING_ONLY} AND {_SAME_CONTENT} THEN RETURN NEW; END IF; "
    "RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'restrict_violation'; END $$",
    *POSTGRESQL[1:],
)


def statements(dialect: str, *, drop: bool = False, chaining: bool = False) -> tuple[str, ...]:
    """The triggers (or their drops); `chaining`: the ones since migration 0049, which let the worker chain an
    unchained entry (migrations before it made, and dropped, the plain ones)."""
    if dialect == "sqlite":
        return SQLITE_DROP if drop else SQLITE_CHAINING if chaining else SQLITE
    if dialect == "postgresql":
        return POSTGRESQL_DROP if drop else POSTGRESQL_CHAINING if chaining else POSTGRESQL
    raise ValueError(f"no append-only triggers for dialect {dialect!r}")
