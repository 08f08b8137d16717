"""Telling contention (a serialization failure, a deadlock, a lock not granted, SQLite's busy file, a row
another transaction changed since this one read it) from other database errors: contention is retried, and
answered 409 BUSY when retries do not settle it."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError

# PostgreSQL: serialization_failure, deadlock_detected, lock_not_available
CONTENTION_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
# what contention is raised as: for `except`, then `is_contention` tells
DATABASE_ERRORS = (DBAPIError, StaleDataError)


def is_contention(error: BaseException) -> bool:
    """True when a retry of the same transaction may well succeed. A StaleDataError is a versioned row (a
    deal) that a concurrent transaction updated after this one loaded it: the retry loads it afresh."""
    if isinstance(error, StaleDataError):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if getattr(error.orig, "sqlstate", None) in CONTENTION_SQLSTATES:
        return True
    return "database is locked" in str(error.orig)
