"""`sql_posting.apply` reads `ledger_apply`'s compact jsonb answer: the transfer's row, the locked accounts'
exact totals for the transaction (`Known`) and a broken flag's message, without a database (a stub connection
returns the answer the function gives)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.domain.ledger import TransferSpec
from app.domain.ledger_batch import LedgerOp
from app.ledger import sql_posting
from app.ledger.engine import Known

AT = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
SPEC = TransferSpec("t1", "bank_clearing:x", "custody:D1", 700, "arrival", 42)


class _Answer:
    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value

    def scalar(self) -> dict[str, Any]:
        return self.value


class _Connection:
    """Records the call and answers with a fixed jsonb value."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer, self.calls = answer, []
        self.info: dict[str, Any] = {}  # a connection's info: no writes queued (app.db.write_batch)

    def exec_driver_sql(self, statement: str, parameters: tuple[Any, ...]) -> _Answer:
        self.calls.append((statement, parameters))
        return _Answer(self.answer)


def test_a_created_posting_gives_its_row_and_the_locked_accounts_exact_totals() -> None:
    connection = _Connection(
        {
            "s": "created",
            "t": [7, 9, 700, "arrival", "single", None, None, 42, "2026-12-05T09:00:00.5+08:00"],
            "h": [
                [7, "bank_clearing:x", "asset", False, True, None, 900, 700, 0, 0],
                [9, "custody:D1", "liability", True, False, None, 0, 700, 0, 150],
            ],
        }
    )
    known = Known()
    result = sql_posting.apply(connection, LedgerOp.post(SPEC, AT), AT, known)  # type: ignore[arg-type]
    assert (result.status, result.ok) == ("created", True)
    assert result.row is not None
    assert (result.row["debit_account_id"], result.row["credit_account_id"], result.row["deal_id"]) == (7, 9, 42)
    assert result.row["created_at"] == datetime(2026, 12, 5, 1, 0, 0, 500_000, tzinfo=UTC)
    assert result.row["created_at"].tzinfo is UTC
    assert known.held["custody:D1"].totals() == (0, 700, 0, 150)
    assert known.held["bank_clearing:x"].credits_must_not_exceed_debits
    assert known.meta["custody:D1"].totals() == (0, 0, 0, 0)  # rules only
    assert not known.meta["custody:D1"].hot and known.meta["custody:D1"].debits_must_not_exceed_credits
    statement, parameters = connection.calls[0]
    assert "ledger_apply(" in statement and statement.count("%s") == len(parameters) == 11
    assert parameters[:7] == ("single", "t1", "bank_clearing:x", "custody:D1", 700, "arrival", 42)


def test_a_resolution_passes_its_hold_and_no_account_codes() -> None:
    connection = _Connection({"s": "PENDING_NOT_FOUND", "d": {"pending_id": "h9"}})
    op = LedgerOp.resolve("post_pending", "h9:posted", "h9", AT, 300)
    result = sql_posting.apply(connection, op, AT)  # type: ignore[arg-type]
    assert (result.status, result.details, result.row) == ("PENDING_NOT_FOUND", {"pending_id": "h9"}, None)
    assert connection.calls[0][1][:8] == ("post_pending", "h9:posted", None, None, 300, None, None, "h9")


def test_a_broken_flag_names_the_totals_it_would_have_had() -> None:
    refused = [9, "custody:D1", "liability", True, False, None, 800, 700, 0, 0]
    connection = _Connection({"s": "BALANCE_CONSTRAINT", "d": {"account": "custody:D1"}, "r": refused})
    spec = TransferSpec("t2", "custody:D1", "bank_clearing:x", 800, "payout")
    result = sql_posting.apply(connection, LedgerOp.post(spec, AT), AT, Known())  # type: ignore[arg-type]
    assert result.status == "BALANCE_CONSTRAINT" and not result.ok
    assert "custody:D1" in result.message and result.details == {"account": "custody:D1"}
