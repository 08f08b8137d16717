"""Writes whose results nobody reads, sent in one round trip: while a session batches (`batching`, PostgreSQL
only), `write` queues its INSERT or UPDATE (a `Template`, built once), and the queue goes to the database as one
statement (data-modifying CTEs, built once per sequence of templates) just before anything else runs on the
connection - any statement, a savepoint, the COMMIT (a statement run with `exec_driver_sql` fires no event: its caller
calls `send` first). Otherwise, and on SQLite, `write` executes at once.

The statements of one batch run on one snapshot in no set order, so a write that touches a table the queue
already touches (other than a second INSERT), or repeats a queued template, sends the queue first: a write never
misses an earlier one. A rolled-back transaction or savepoint drops what it queued."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, Update, bindparam, event, insert, update
from sqlalchemy.orm import Session

BATCH = "cunguan.write_batch"  # in the connection's info while batching: the queued (template, parameters)

_numbers = itertools.count()


@dataclass(frozen=True, eq=False)
class Template:
    """A write built once, its values bound parameters named `w<n>_<column>` (unique across templates), so
    that neither it nor any batch of templates is built, keyed or compiled again per use."""

    statement: Insert | Update
    prefix: str

    def parameters(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {self.prefix + name: value for name, value in values.items()}


def inserting(table: Table, columns: Sequence[str]) -> Template:
    """INSERT INTO table (columns) VALUES (…): `write` it with a value for each column."""
    prefix = f"w{next(_numbers)}_"
    values = {name: bindparam(prefix + name, type_=table.c[name].type) for name in columns}
    return Template(insert(table).values(values), prefix)


def updating(table: Table, key: str, columns: Sequence[str]) -> Template:
    """UPDATE table SET columns WHERE key = …: `write` it with a value for the key and each column."""
    prefix = f"w{next(_numbers)}_"
    values = {name: bindparam(prefix + name, type_=table.c[name].type) for name in columns}
    where = table.c[key] == bindparam(prefix + key, type_=table.c[key].type)
    return Template(update(table).where(where).values(values), prefix)


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


def write(session: Session, template: Template, values: Mapping[str, Any]) -> None:
    """Execute `template` with `values` (column -> value) now, or queue it while the session batches."""
    parameters = template.parameters(values)
    queue: list[tuple[Template, dict[str, Any]]] | None = session.connection().info.get(BATCH)
    if queue is None:
        session.execute(template.statement, parameters)
        return
    if _conflicts([queued for queued, _ in queue], template):
        send(session.connection())
    queue.append((template, parameters))


def write_many(session: Session, template: Template, rows: Sequence[Mapping[str, Any]]) -> None:
    """Several rows of one template: one at most, queued like `write`; more, one executemany now."""
    if len(rows) == 1:
        write(session, template, rows[0])
    elif rows:
        session.execute(template.statement, [template.parameters(row) for row in rows])


def _conflicts(queued: list[Template], template: Template) -> bool:
    """Whether `template` may not join the queue: the same template (its parameter names), or a table the
    queue touches, unless all are INSERTs."""
    if template in queued:
        return True
    table = _table(template)
    touched = [other for other in queued if _table(other) is table]
    return bool(touched) and not (
        isinstance(template.statement, Insert) and all(isinstance(other.statement, Insert) for other in touched)
    )


def _table(template: Template) -> Table:
    table = template.statement.table
    assert isinstance(table, Table), table
    return table


# a template is queued at most once per batch: a few dozen sequences at most
_combined: dict[tuple[Template, ...], Insert | Update] = {}


def combined(templates: tuple[Template, ...]) -> Insert | Update:
    """One statement running them all: the last one, the others as its CTEs (built once per sequence)."""
    statement = _combined.get(templates)
    if statement is None:
        *first, last = templates
        ctes = [template.statement.cte(f"batched_{n}") for n, template in enumerate(first)]
        statement = _combined[templates] = last.statement.add_cte(*ctes) if ctes else last.statement
    return statement


def send(connection: Connection) -> None:
    """Run what the connection has queued, now (`exec_driver_sql` fires no `before_execute`: its callers call this)."""
    queue: list[tuple[Template, dict[str, Any]]] | None = connection.info.get(BATCH)
    if queue:
        writes = queue[:]
        queue.clear()  # before executing: the execution's own event finds nothing to send
        parameters = {name: value for _, values in writes for name, value in values.items()}
        connection.execute(combined(tuple(template for template, _ in writes)), parameters)


def _drop(connection: Connection, *_args: Any) -> None:
    queue: list[Any] | None = connection.info.get(BATCH)
    if queue:
        queue.clear()


@event.listens_for(Engine, "before_execute")
def _before_execute(connection: Connection, *_args: Any) -> None:
    send(connection)


@event.listens_for(Engine, "savepoint")
def _before_savepoint(connection: Connection, _name: str | None) -> None:
    send(connection)  # what was queued before the savepoint is not undone by its rollback


@event.listens_for(Engine, "commit")
def _before_commit(connection: Connection) -> None:
    send(connection)


event.listen(Engine, "rollback", _drop)
event.listen(Engine, "rollback_savepoint", _drop)
