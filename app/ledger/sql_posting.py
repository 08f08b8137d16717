"""PostgreSQL: one ledger operation in one round trip, through `ledger_apply` (`app.db.ledger_function`).

What the services use for a single posting, hold, post or void of a hold: the same rules, result codes and
details as the batch engine gives for a batch of one operation, in the caller's transaction (the function
never commits). Batches, and everything on SQLite, go through the batch engine (`app.ledger.engine`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from app.db import write_batch
from app.domain.ledger import flag_violation
from app.domain.ledger_batch import MESSAGES, AccountState, LedgerOp, OpResult
from app.ledger.engine import Known

log = logging.getLogger("cunguan.ledger")

# Run with `exec_driver_sql`: no statement to compile or cache-key per call, positional arguments straight to
# psycopg (which prepares the statement on the server after a few executions on a connection).
_APPLY = (
    "SELECT ledger_apply(%s::varchar, %s::varchar, %s::varchar, %s::varchar, %s::bigint, %s::varchar, %s::bigint,"
    " %s::varchar, %s::timestamptz, %s::timestamptz, %s::timestamptz)"
)


def parameters(op: LedgerOp, now: datetime) -> tuple[Any, ...]:
    """The function's arguments for one operation, in its order."""
    spec = op.spec
    if spec is None:
        return (op.kind, op.id, None, None, op.amount_fen, None, None, op.pending_id, op.timeout_at, op.at, now)
    return (
        op.kind,
        op.id,
        spec.debit_code,
        spec.credit_code,
        spec.amount_fen,
        spec.code,
        spec.deal_id,
        op.pending_id,
        op.timeout_at,
        op.at,
        now,
    )


def apply(connection: Connection, op: LedgerOp, now: datetime, known: Known | None = None) -> OpResult:
    """Run one operation in the connection's open transaction, in one statement. `known`, when given, learns
    the exact totals of the ordinary accounts the operation locked (as after a batch of the engine)."""
    write_batch.send(connection)  # exec_driver_sql fires no before_execute: what is queued goes first
    out: dict[str, Any] = connection.exec_driver_sql(_APPLY, parameters(op, now)).scalar()
    if known is not None and "h" in out:
        for values in out["h"]:
            state = _state(values)
            known.held[state.code] = state
            known.meta[state.code] = _rules(state)
    for code, projected, threshold, raised in out.get("a", ()):
        if raised:
            log.warning(
                "hot account balance low",
                extra={"account": code, "projected_fen": projected, "threshold_fen": threshold},
            )
        else:
            log.info("hot account balance recovered", extra={"account": code, "projected_fen": projected})
    status = out["s"]
    if status in ("created", "exists"):
        debit, credit, amount, code, kind, pending, timeout, deal, created = out["t"]
        row = {
            "id": op.id,
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount_fen": amount,
            "code": code,
            "kind": kind,
            "pending_id": pending,
            "timeout_at": _moment(timeout),
            "deal_id": deal,
            "created_at": _moment(created),
        }
        return OpResult(op.id, status, row=row)
    return OpResult(op.id, status, _message(status, out.get("r")), out.get("d", {}))


def _moment(value: str | None) -> datetime | None:
    """A timestamptz as jsonb gives it (ISO 8601 with the session's offset), as an aware UTC datetime."""
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def _message(status: str, refused: list[Any] | None) -> str:
    """The message the batch engine gives for this refusal (a broken flag names the totals it would have had)."""
    if status != "BALANCE_CONSTRAINT":
        return MESSAGES[status]
    assert refused is not None
    account = _state(refused)
    problem = flag_violation(account.spec, *account.totals())
    assert problem is not None, refused
    return problem


def _state(values: list[Any]) -> AccountState:
    """An account as the answer lists it: its rules, then its four totals (jsonb numbers: Python ints)."""
    account_id, code, kind, debits_limited, credits_limited, alert_below_fen, *totals = values
    return AccountState(account_id, code, kind, debits_limited, credits_limited, False, alert_below_fen, *totals)


def _rules(state: AccountState) -> AccountState:
    return AccountState(
        state.id,
        state.code,
        state.type,
        state.debits_must_not_exceed_credits,
        state.credits_must_not_exceed_debits,
        state.hot,
        state.alert_below_fen,
    )
