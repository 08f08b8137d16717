"""Run a batch of ledger operations in the caller's transaction with a few set-based statements.

Load what the batch names (its transfers, the holds it resolves, its accounts), lock the account rows it
must lock in id order (PostgreSQL: FOR NO KEY UPDATE, which foreign-key checks do not wait for), plan the
batch in memory (`app.domain.ledger_batch`), then write: the new transfers in one multi-row insert, the
locked accounts' totals, and one buffer row per untouched hot account. Nothing is written for an
operation that fails. The database's CHECK constraints stay the last line of defence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Connection,
    String,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from app.db.ledger_models import LedgerAccount, LedgerAlert, LedgerHotEntry, LedgerTransfer
from app.domain.ledger_batch import (
    RESOLUTIONS,
    TOTALS,
    AccountState,
    LedgerOp,
    OpResult,
    StoredTransfer,
    can_buffer,
    plan_batch,
)
from app.platform.errors import LedgerError

log = logging.getLogger("cunguan.ledger")


ACCOUNTS = LedgerAccount.__table__
TRANSFERS = LedgerTransfer.__table__
HOT = LedgerHotEntry.__table__
ALERTS = LedgerAlert.__table__
META_COLUMNS = (
    ACCOUNTS.c.id,
    ACCOUNTS.c.code,
    ACCOUNTS.c.type,
    ACCOUNTS.c.debits_must_not_exceed_credits,
    ACCOUNTS.c.credits_must_not_exceed_debits,
    ACCOUNTS.c.hot,
    ACCOUNTS.c.alert_below_fen,
)
TOTAL_COLUMNS = tuple(ACCOUNTS.c[name] for name in TOTALS)
_UPDATE_TOTALS = (
    update(ACCOUNTS)
    .where(ACCOUNTS.c.id == bindparam("account_id"))
    .values({name: bindparam(f"new_{name}") for name in TOTALS})
)
_TRANSFER_ARRAYS = (
    ("id", "varchar"),
    ("debit_account_id", "bigint"),
    ("credit_account_id", "bigint"),
    ("amount_fen", "bigint"),
    ("code", "varchar"),
    ("kind", "varchar"),
    ("pending_id", "varchar"),
    ("timeout_at", "timestamptz"),
    ("deal_id", "bigint"),
    ("created_at", "timestamptz"),
)
# PostgreSQL: every changed account in one statement, one round trip, whatever the batch size.
_UPDATE_TOTALS_SQL = (
    "UPDATE ledger_accounts AS a SET debits_posted = v.dp, credits_posted = v.cp,"
    " debits_pending = v.dq, credits_pending = v.cq"
    " FROM unnest(CAST(:ids AS bigint[]), CAST(:dp AS bigint[]), CAST(:cp AS bigint[]),"
    " CAST(:dq AS bigint[]), CAST(:cq AS bigint[])) AS v(id, dp, cp, dq, cq) WHERE a.id = v.id"
)
_UPDATE_TOTALS_PG = text(_UPDATE_TOTALS_SQL)

# PostgreSQL: a batch's whole write in one round trip. The totals and the hot buffer rows are written only
# if every new transfer was inserted; otherwise (a concurrent transaction committed one of those ids first)
# the statement reports it and, for a batch of one transfer, has written nothing.
_WRITE_PG = text(
    "WITH t AS ("
    f" INSERT INTO ledger_transfers ({', '.join(name for name, _ in _TRANSFER_ARRAYS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _TRANSFER_ARRAYS)
    + ") ON CONFLICT (id) DO NOTHING RETURNING id"
    "), complete AS (SELECT count(*) = :expected AS ok FROM t"
    f"), totals AS ({_UPDATE_TOTALS_SQL} AND (SELECT ok FROM complete) RETURNING a.id"
    "), buffered AS ("
    " INSERT INTO ledger_hot_entries (account_id, debits_posted, credits_posted, created_at)"
    " SELECT v.id, v.dp, v.cp, CAST(:now AS timestamptz)"
    " FROM unnest(CAST(:hot_ids AS bigint[]), CAST(:hot_dp AS bigint[]), CAST(:hot_cp AS bigint[])) AS v(id, dp, cp)"
    " WHERE (SELECT ok FROM complete) RETURNING id"
    ") SELECT ok FROM complete"
)


class ConcurrentPosting(LedgerError):
    """A transfer this batch planned to create was committed by a concurrent transaction. When `clean`,
    the batch wrote nothing that needs undoing and may simply run again (it then sees that transfer);
    otherwise it wrote part of its rows and must be rolled back (to a savepoint) first."""

    code = "CONCURRENT_POSTING"

    def __init__(self, message: str, *, clean: bool, details: dict[str, Any]) -> None:
        super().__init__(message, details=details)
        self.clean = clean


@dataclass
class Known:
    """What one transaction knows of its ledger accounts, by code, so that its later batches and balance
    reads need fewer statements. The caller owns it and must drop it whenever the transaction, or a savepoint
    in it, rolls back (an account created there would be gone).

    `meta`: every account a batch loaded - its rules (totals zero), as first read in the transaction.
    `held`: the non-hot accounts the transaction has locked, with their exact totals: nobody else can move
    them before it ends."""

    meta: dict[str, AccountState] = field(default_factory=dict)
    held: dict[str, AccountState] = field(default_factory=dict)


def execute(
    connection: Connection,
    ops: list[LedgerOp],
    now: datetime,
    known: Known | None = None,
) -> list[OpResult]:
    """Apply `ops` inside the connection's open transaction; one result per op, in order. `known`, when
    given, is what the transaction learnt of its accounts in earlier batches; this one adds to it.

    A batch that plans at most one new transfer either writes completely or, when a concurrent
    transaction committed that transfer first, writes nothing but the hot buffers it folded (a fold is
    complete on its own) and raises a clean ConcurrentPosting: it needs no savepoint around it.
    (On PostgreSQL the services run a single op through `sql_posting`, in one statement.)"""
    if not ops:
        return []
    known = Known() if known is None else known
    wanted = {op.id for op in ops} | {op.pending_id for op in ops if op.pending_id is not None}
    existing = _stored(connection, wanted)
    resolved = _resolutions(connection, {op.pending_id for op in ops if op.pending_id is not None})
    accounts = _load_accounts(connection, ops, existing, known)
    locked = _lock_and_refresh(connection, ops, existing, accounts, known.held)
    folded = [replace(a) for a in accounts.values() if a.hot and a.id in locked]  # their totals before the plan
    plan = plan_batch(ops, accounts, existing, resolved)
    # Locked hot accounts were folded: their new totals are written even when every op on them failed.
    changed = [a for a in accounts.values() if a.id in plan.changed or (a.hot and a.id in locked)]
    if not _write(connection, plan.rows, changed, now):
        ids = [row["id"] for row in plan.rows]
        if len(plan.rows) > 1:
            raise ConcurrentPosting("另一事务刚刚记入了同一记账编号，请重试本批", clean=False, details={"ids": ids})
        _set_totals(connection, folded)
        raise ConcurrentPosting("另一事务刚刚记入了同一记账编号，请重试本批", clean=True, details={"ids": ids})
    known.held.update({a.code: replace(a) for a in accounts.values() if a.id in locked and not a.hot})
    _watch_alerts(connection, [a for a in accounts.values() if a.id in locked], plan.refused_on, now)
    written = {row["id"]: row for row in plan.rows}
    return [
        replace(result, row=written.get(result.id)) if result.status == "created" else result for result in plan.results
    ]


def fold_hot(connection: Connection, now: datetime, account_ids: Iterable[int] | None = None) -> int:
    """Fold buffered postings into their hot accounts; returns how many buffer rows were folded."""
    query = select(ACCOUNTS.c.id).where(ACCOUNTS.c.hot.is_(True))
    ids = sorted(account_ids) if account_ids is not None else list(connection.scalars(query))
    if not ids:
        return 0
    rows = connection.execute(_locked(ids)).all()
    states = {row.id: _state(row) for row in rows}
    folded = _fold_into(connection, states)
    if folded:
        _set_totals(connection, list(states.values()))
    _watch_alerts(connection, list(states.values()), set(), now)
    return folded


def exact_totals(connection: Connection, account_id: int) -> tuple[int, int, int, int]:
    """(debits_posted, credits_posted, debits_pending, credits_pending) including unfolded hot postings,
    read in one statement so that a concurrent fold cannot be counted twice or missed."""
    row = connection.execute(_exact(ACCOUNTS.c.id == account_id)).one()
    return int(row.debits_posted), int(row.credits_posted), int(row.debits_pending), int(row.credits_pending)


def exact_state(connection: Connection, code: str) -> AccountState | None:
    """The account with this code and its exact totals (as `exact_totals`), in one statement; None if
    there is no such account."""
    row = connection.execute(_exact(ACCOUNTS.c.code == code)).one_or_none()
    return None if row is None else _state(row)


def _exact(condition: ColumnElement[bool]):  # type: ignore[no-untyped-def] - a Select
    buffered = [
        select(func.coalesce(func.sum(HOT.c[name]), 0)).where(HOT.c.account_id == ACCOUNTS.c.id).scalar_subquery()
        for name in ("debits_posted", "credits_posted")
    ]
    return select(
        *META_COLUMNS,
        (ACCOUNTS.c.debits_posted + buffered[0]).label("debits_posted"),
        (ACCOUNTS.c.credits_posted + buffered[1]).label("credits_posted"),
        ACCOUNTS.c.debits_pending,
        ACCOUNTS.c.credits_pending,
    ).where(condition)


def _among(connection: Connection, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter whose cached plan keeps the index."""
    values = list(values)
    if connection.dialect.name == "postgresql":
        item = String() if isinstance(column.type, String) else BigInteger()
        return column == any_(bindparam(None, values, type_=ARRAY(item)))
    return column.in_(values)


# --- loading --------------------------------------------------------------------------------------


def _stored(connection: Connection, ids: set[str]) -> dict[str, StoredTransfer]:
    rows = connection.execute(
        select(
            TRANSFERS.c.id,
            TRANSFERS.c.kind,
            TRANSFERS.c.debit_account_id,
            TRANSFERS.c.credit_account_id,
            TRANSFERS.c.amount_fen,
            TRANSFERS.c.code,
            TRANSFERS.c.pending_id,
            TRANSFERS.c.deal_id,
        ).where(_among(connection, TRANSFERS.c.id, ids))
    )
    return {row.id: StoredTransfer(*row) for row in rows}


def _resolutions(connection: Connection, pending_ids: set[str]) -> dict[str, str]:
    if not pending_ids:
        return {}
    rows = connection.execute(
        select(TRANSFERS.c.pending_id, TRANSFERS.c.id).where(_among(connection, TRANSFERS.c.pending_id, pending_ids))
    )
    return {row.pending_id: row.id for row in rows}


def _load_accounts(
    connection: Connection, ops: list[LedgerOp], existing: dict[str, StoredTransfer], known: Known
) -> dict[str, AccountState]:
    """The accounts the ops move, by code: copies of what the transaction knows (the plan changes them in
    place; `known` changes only once the batch is written) - a held account with its exact totals, another
    with its rules - and the others loaded (and then known)."""
    codes = {code for op in ops if op.spec is not None for code in (op.spec.debit_code, op.spec.credit_code)}
    ids = {
        account_id
        for op in ops
        if op.pending_id in existing
        for account_id in (existing[op.pending_id].debit_account_id, existing[op.pending_id].credit_account_id)
    }
    by_id = {account.id: account for account in known.meta.values()} | {a.id: a for a in known.held.values()}
    accounts = {code: replace(known.held.get(code) or known.meta[code]) for code in codes if code in known.meta}
    accounts |= {by_id[i].code: replace(by_id[i]) for i in ids if i in by_id}
    codes -= set(accounts)
    ids -= set(by_id)
    if codes or ids:
        rows = connection.execute(
            select(*META_COLUMNS).where(
                _among(connection, ACCOUNTS.c.code, codes) | _among(connection, ACCOUNTS.c.id, ids)
            )
        )
        loaded = {row.code: _state(row) for row in rows}
        known.meta.update({code: replace(state) for code, state in loaded.items()})
        accounts |= loaded
    return accounts


def _sides(
    ops: list[LedgerOp], existing: dict[str, StoredTransfer], accounts: dict[str, AccountState]
) -> list[tuple[AccountState, str, str]]:
    """(account, side, kind) for every account side a new operation may move."""
    by_id = {account.id: account for account in accounts.values()}
    sides = []
    for op in ops:
        if op.id in existing:
            continue
        if op.kind in RESOLUTIONS:
            pending = existing.get(op.pending_id or "")
            if pending is not None:
                sides += [(by_id[pending.debit_account_id], "debit", op.kind)]
                sides += [(by_id[pending.credit_account_id], "credit", op.kind)]
            continue
        assert op.spec is not None
        for code, side in ((op.spec.debit_code, "debit"), (op.spec.credit_code, "credit")):
            if code in accounts:
                sides.append((accounts[code], side, op.kind))
    return sides


def _lock_and_refresh(
    connection: Connection,
    ops: list[LedgerOp],
    existing: dict[str, StoredTransfer],
    accounts: dict[str, AccountState],
    held: dict[str, AccountState],
) -> set[int]:
    """Lock every account a new op moves, unless all its moves are safe hot postings (then buffer).
    Returns the ids of the locked accounts, whose states now hold their exact totals (held accounts are
    locked already and their totals are exact)."""
    sides = _sides(ops, existing, accounts)
    locked = {account.id for account, side, kind in sides if not can_buffer(account, side, kind)}
    for account, _side, _kind in sides:
        account.buffered = account.id not in locked
    held_ids = {account.id for account in held.values()}
    to_lock = sorted(locked - held_ids)
    if not to_lock:
        return locked
    rows = connection.execute(_locked(to_lock)).all()
    by_id = {account.id: account for account in accounts.values()}
    for row in rows:
        by_id[row.id].set_totals((row.debits_posted, row.credits_posted, row.debits_pending, row.credits_pending))
        by_id[row.id].alert_below_fen = row.alert_below_fen
    _fold_into(connection, {i: by_id[i] for i in to_lock if by_id[i].hot})
    return locked


def _locked(ids: list[int]):  # type: ignore[no-untyped-def] - a Select
    return (
        select(*META_COLUMNS, *TOTAL_COLUMNS)
        .where(ACCOUNTS.c.id.in_(ids))
        .order_by(ACCOUNTS.c.id)
        .with_for_update(key_share=True)
    )


def _fold_into(connection: Connection, states: dict[int, AccountState]) -> int:
    """Delete the buffer rows of these (locked) hot accounts and add them to their totals."""
    if not states:
        return 0
    rows = connection.execute(
        delete(HOT)
        .where(HOT.c.account_id.in_(list(states)))
        .returning(HOT.c.account_id, HOT.c.debits_posted, HOT.c.credits_posted)
    ).all()
    for row in rows:
        state = states[row.account_id]
        state.debits_posted += row.debits_posted
        state.credits_posted += row.credits_posted
    return len(rows)


def _state(row: object) -> AccountState:
    values = row._mapping  # type: ignore[attr-defined]
    state = AccountState(
        values["id"],
        values["code"],
        values["type"],
        values["debits_must_not_exceed_credits"],
        values["credits_must_not_exceed_debits"],
        values["hot"],
        values["alert_below_fen"],
    )
    if "debits_posted" in values:
        state.set_totals(tuple(int(values[name]) for name in TOTALS))  # type: ignore[arg-type] - sums: Decimal on PostgreSQL
    return state


# --- writing --------------------------------------------------------------------------------------


def _write(connection: Connection, rows: list[dict[str, Any]], changed: list[AccountState], now: datetime) -> bool:
    """Insert the batch's new transfers and write the changed accounts: locked ones get their new totals,
    buffered hot ones a buffer row with their deltas. False when a transfer id was committed meanwhile by
    a concurrent transaction (PostgreSQL; ON CONFLICT DO NOTHING waited for it); then the totals and
    buffers are not written, and neither are the transfers of a batch of one. SQLite runs one writer at a
    time and cannot race."""
    if not rows:
        _write_totals(connection, changed, now)
        return True
    if connection.dialect.name != "postgresql":
        connection.execute(insert(TRANSFERS), rows)
        _write_totals(connection, changed, now)
        return True
    buffered = _with_deltas(changed)
    parameters = {name: [row[name] for row in rows] for name, _ in _TRANSFER_ARRAYS}
    parameters |= {"expected": len(rows), "now": now}
    parameters |= _totals_arrays([state for state in changed if not state.buffered])
    parameters |= {
        "hot_ids": [s.id for s in buffered],
        "hot_dp": [s.debits_posted for s in buffered],
        "hot_cp": [s.credits_posted for s in buffered],
    }
    return bool(connection.execute(_WRITE_PG, parameters).scalar_one())


def _with_deltas(changed: list[AccountState]) -> list[AccountState]:
    """The buffered (hot) accounts that moved: each gets a buffer row with its deltas."""
    return [s for s in changed if s.buffered and (s.debits_posted or s.credits_posted)]


def _totals_arrays(states: list[AccountState]) -> dict[str, list[int]]:
    """The parameters of `_UPDATE_TOTALS_SQL`: one array per column."""
    totals = [state.totals() for state in states]
    columns = {name: [row[index] for row in totals] for index, name in enumerate(("dp", "cp", "dq", "cq"))}
    return {"ids": [state.id for state in states]} | columns


def _set_totals(connection: Connection, states: list[AccountState]) -> None:
    if not states:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(_UPDATE_TOTALS_PG, _totals_arrays(states))
        return
    rows = [
        {"account_id": state.id, **{f"new_{name}": value for name, value in zip(TOTALS, state.totals(), strict=True)}}
        for state in states
    ]
    connection.execute(_UPDATE_TOTALS, rows)


def _write_totals(connection: Connection, changed: list[AccountState], now: datetime) -> None:
    _set_totals(connection, [state for state in changed if not state.buffered])
    buffered = [
        {"account_id": s.id, "debits_posted": s.debits_posted, "credits_posted": s.credits_posted, "created_at": now}
        for s in _with_deltas(changed)
    ]
    if buffered:
        connection.execute(insert(HOT), buffered)


def _watch_alerts(connection: Connection, states: list[AccountState], refused_on: set[int], now: datetime) -> None:
    """Raise an alert when a watched hot account's projected balance falls below its threshold (or a
    posting was refused on it); clear it when the balance is back or the account is no longer watched."""
    watched = [s for s in states if s.hot]
    if not watched:
        return
    open_alerts = dict(
        connection.execute(
            select(ALERTS.c.account_id, ALERTS.c.id).where(
                ALERTS.c.account_id.in_([s.id for s in watched]), ALERTS.c.cleared_at.is_(None)
            )
        ).all()
    )
    for state in watched:
        threshold = state.alert_below_fen or 0
        projected = state.projected_fen()
        low = (state.alert_below_fen is not None and projected < threshold) or state.id in refused_on
        if low and state.id not in open_alerts:
            connection.execute(
                insert(ALERTS).values(
                    account_id=state.id, projected_fen=projected, threshold_fen=threshold, raised_at=now
                )
            )
            log.warning(
                "hot account balance low",
                extra={"account": state.code, "projected_fen": projected, "threshold_fen": threshold},
            )
        elif not low and state.id in open_alerts:
            connection.execute(update(ALERTS).where(ALERTS.c.id == open_alerts[state.id]).values(cleared_at=now))
            log.info("hot account balance recovered", extra={"account": state.code, "projected_fen": projected})
