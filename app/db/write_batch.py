"""Writes whose results nobody reads, sent in one round trip: while a session batches (`batching`, PostgreSQL
only), `write` queues its INSERT or UPDATE, and the queue goes to the database as one statement (data-modifying
CTEs) just before anything else runs on the connection - any statement, a savepoint, the COMMIT. Otherwise, and
on SQLite, `write` executes at once.

The statements of one batch run on one snapshot in no set order, so a statement that touches a table the
queue already touches (other than a second INSERT) sends the queue first: a write never misses an earlier one.
A rolled-back transaction or savepoint drops what it queued."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, Update, event
from sqlalchemy.orm import Session

BATCH = "cunguan.write_batch"  # in the connection's info while batching: the queued statements

Write = Insert | Update


@contextmanager
def batching(session: Session) -> Iterator[None]:
    """Queue this session's `write`s until the connection runs something else (PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    info = session.connection().info
    info[BATCH] = []
    try:
        yield
    finally:
        info.pop(BATCH, None)


def write(session: Session, statement: Write) -> None:
    """Execute `statement` (with its values bound) now, or queue it while the session batches."""
    queue: list[Write] | None = session.connection().info.get(BATCH)
    if queue is None:
        session.execute(statement)
        return
    if _conflicts(queue, statement):
        _send(session.connection())
    queue.append(statement)


def _conflicts(queue: list[Write], statement: Write) -> bool:
    table = _table(statement)
    touched = [queued for queued in queue if _table(queued) is table]
    return bool(touched) and not (
        isinstance(statement, Insert) and all(isinstance(queued, Insert) for queued in touched)
    )


def _table(statement: Write) -> Table:
    table = statement.table
    assert isinstance(table, Table), table
    return table


def combined(statements: list[Write]) -> Write:
    """One statement running them all: the last one, the others as its CTEs."""
    *first, last = statements
    return last.add_cte(*(statement.cte(f"batched_{n}") for n, statement in enumerate(first))) if first else last


def _send(connection: Connection) -> None:
    queue: list[Write] | None = connection.info.get(BATCH)
    if queue:
        statements = queue[:]
        queue.clear()  # before executing: the execution's own event finds nothing to send
        connection.execute(combined(statements))


def _drop(connection: Connection, *_args: Any) -> None:
    queue: list[Write] | None = connection.info.get(BATCH)
    if queue:
        queue.clear()


@event.listens_for(Engine, "before_execute")
def _before_execute(connection: Connection, *_args: Any) -> None:
    _send(connection)


@event.listens_for(Engine, "savepoint")
def _before_savepoint(connection: Connection, _name: str | None) -> None:
    _send(connection)  # what was queued before the savepoint is not undone by its rollback


@event.listens_for(Engine, "commit")
def _before_commit(connection: Connection) -> None:
    _send(connection)


event.listen(Engine, "rollback", _drop)
event.listen(Engine, "rollback_savepoint", _drop)
