"""The console's running totals (issue 21): read them exactly, fold their deltas, recount them from the book.

Triggers (`app.db.figure_triggers`) append a delta row in the transaction of every change: custody balance by
(city, bank, product) and deal counts by (product, workflow, version, state). `read` adds the folded totals and
the deltas not yet folded in one statement (one snapshot: a fold committing meanwhile is seen whole or not at
all), so the home page is exact and reads a handful of rows however large the book. `fold` (every worker, with
the ledger's maintenance) moves the deltas into the totals; `recount` is the full scan the totals replace.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, text

from app.db.figure_triggers import CUSTODY, DEALS, SEPARATOR, recount_sql
from app.platform.runtime import Runtime

log = logging.getLogger("cunguan.figures")

FOLD_LOCK_KEY = 0x46494753  # "FIGS": one folder at a time (PostgreSQL); the others skip their turn

_READ = text(
    "SELECT figure, key, sum(value) FROM (SELECT figure, key, value FROM figure_totals"
    " UNION ALL SELECT figure, key, delta FROM figure_deltas) AS f GROUP BY figure, key"
)
_FOLD_PG = text(
    "WITH gone AS (DELETE FROM figure_deltas RETURNING figure, key, delta),"
    " sums AS (SELECT figure, key, CAST(sum(delta) AS bigint) AS delta FROM gone GROUP BY figure, key),"
    " written AS (INSERT INTO figure_totals (figure, key, value) SELECT figure, key, delta FROM sums"
    " ORDER BY figure, key ON CONFLICT (figure, key) DO UPDATE SET value = figure_totals.value + EXCLUDED.value"
    " RETURNING 1)"
    " SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM written)"
)
_FOLD_SQLITE = (
    "INSERT INTO figure_totals (figure, key, value) SELECT figure, key, sum(delta) FROM figure_deltas"
    " WHERE id <= :last GROUP BY figure, key ON CONFLICT (figure, key) DO UPDATE SET value = value + excluded.value",
    "DELETE FROM figure_deltas WHERE id <= :last",
)


@dataclass(frozen=True)
class CustodyKey:
    city_code: str
    bank_code: str
    product: str


@dataclass(frozen=True)
class StateKey:
    product: str
    workflow_id: str
    workflow_version: int
    state: str


@dataclass(frozen=True)
class Figures:
    custody: dict[CustodyKey, int]  # posted custody balance, fen
    deals: dict[StateKey, int]  # how many deals


def read(connection: Connection) -> Figures:
    """Every figure, exact: folded totals plus unfolded deltas (zeros left out)."""
    return _figures(connection.execute(_READ).all())


def recount(connection: Connection) -> Figures:
    """The same figures counted from the book (every custody account, every deal): what `read` must equal."""
    return _figures(connection.execute(text(recount_sql(connection.dialect.name))).all())


def _figures(rows: object) -> Figures:
    custody: dict[CustodyKey, int] = defaultdict(int)
    deals: dict[StateKey, int] = defaultdict(int)
    for figure, key, value in rows:  # type: ignore[attr-defined]
        parts = key.split(SEPARATOR)
        if figure == CUSTODY:
            custody[CustodyKey(*parts)] += int(value)
        elif figure == DEALS:
            product, workflow_id, version, state = parts
            deals[StateKey(product, workflow_id, int(version), state)] += int(value)
    return Figures(
        {key: value for key, value in custody.items() if value}, {key: value for key, value in deals.items() if value}
    )


def fold_deltas(connection: Connection) -> int:
    """Move every committed delta into the totals, in the connection's transaction; returns how many were folded.
    PostgreSQL: one statement under a tried advisory lock (another worker folding: 0, its turn); SQLite runs one
    writer at a time."""
    if connection.dialect.name == "postgresql":
        if not connection.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": FOLD_LOCK_KEY}):
            return 0
        folded, _written = connection.execute(_FOLD_PG).one()
    else:
        last = connection.scalar(text("SELECT max(id) FROM figure_deltas"))
        if last is None:
            return 0
        folded = connection.scalar(text("SELECT count(*) FROM figure_deltas WHERE id <= :last"), {"last": last})
        for statement in _FOLD_SQLITE:
            connection.execute(text(statement), {"last": last})
    if folded:
        connection.execute(text("DELETE FROM figure_totals WHERE value = 0"))
    return int(folded or 0)


def fold(rt: Runtime) -> int:
    """The worker's periodic fold (with the ledger's maintenance)."""
    with rt.db.uow() as uow:
        folded = fold_deltas(uow.session.connection())
        uow.commit()
    if folded:
        log.info("figures folded", extra={"folded": folded})
    return folded
