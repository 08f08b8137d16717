"""Telling contention (a serialization failure, a deadlock, a lock not granted, SQLite's busy file) from
other database errors: contention is retried, and answered 409 BUSY when retries do not settle it."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

# PostgreSQL: serialization_failure, deadlock_detected, lock_not_available
CONTENTION_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def is_contention(error: BaseException) -> bool:
    """True when a retry of the same transaction may well succeed."""
    if not isinstance(error, DBAPIError):
        return False
    if getattr(error.orig, "sqlstate", None) in CONTENTION_SQLSTATES:
        return True
    return "database is locked" in str(error.orig)
