"""PostgreSQL's one-call posting (`ledger_apply`) against the batch engine: the same result, code, message,
details and writes for the same operation on the same ledger; and one posting is one statement.

PostgreSQL only (SQLite has no such function: there the batch engine runs every operation); collected only
where a PostgreSQL server is configured (CI), not skipped."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, select, text

from app.db.base import utcnow
from app.db.ledger_models import LedgerAccount
from app.domain.ledger import AccountSpec, TransferSpec
from app.domain.ledger_batch import LedgerOp, OpResult
from app.ledger import engine as ledger_engine
from app.ledger import sql_posting
from app.ledger.repo import LedgerRepository
from app.platform.runtime import Runtime
from tests.conftest import POSTGRES_URL

ACCOUNTS = (
    AccountSpec("clearing", "asset", "清算", credits_must_not_exceed_debits=True, hot=True, alert_below_fen=500),
    AccountSpec("income", "income", "收入", hot=True),
    AccountSpec("custody:a", "liability", "存管A", debits_must_not_exceed_credits=True),
    AccountSpec("custody:b", "liability", "存管B", debits_must_not_exceed_credits=True),
    AccountSpec("equity", "equity", "权益"),
)
CODES = [account.code for account in ACCOUNTS] + ["missing"]
EVERY_OUTCOME = {
    "created",
    "exists",
    "TRANSFER_ID_CONFLICT",
    "UNKNOWN_ACCOUNT",
    "PENDING_NOT_FOUND",
    "PENDING_ALREADY_RESOLVED",
    "BAD_AMOUNT",
    "BALANCE_CONSTRAINT",
}


class OpMaker:
    """Random operations that reach every outcome: new and repeated ids, holds and their resolutions, unknown
    accounts and holds, amounts beyond what an account holds."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.count = 0
        self.done: list[LedgerOp] = []  # operations that were created
        self.holds: list[str] = []

    def next(self) -> LedgerOp:
        r, now = self.random, utcnow()
        choice = r.random()
        if self.done and choice < 0.15:  # a repeat: the same, or the same id saying something else
            op = r.choice(self.done)
            if op.spec is not None and r.random() < 0.5:
                spec = op.spec
                spec = TransferSpec(spec.id, spec.debit_code, spec.credit_code, spec.amount_fen + 1, spec.code)
                return LedgerOp(op.kind, op.id, now, spec=spec)
            return LedgerOp(op.kind, op.id, now, spec=op.spec, pending_id=op.pending_id, amount_fen=op.amount_fen)
        self.count += 1
        transfer_id = f"t{self.count}"
        if choice < 0.4 and (self.holds or r.random() < 0.2):  # resolve a hold (or one that does not exist)
            pending_id = r.choice(self.holds) if self.holds and r.random() < 0.9 else transfer_id
            kind = r.choice(("post_pending", "void_pending"))
            amount = r.choice((None, None, r.randint(0, 3_000))) if kind == "post_pending" else None
            return LedgerOp.resolve(kind, transfer_id, pending_id, now, amount)
        debit, credit = r.sample(CODES if r.random() < 0.1 else CODES[:-1], 2)
        spec = TransferSpec(transfer_id, debit, credit, r.randint(1, 2_500), r.choice(("arrival", "payout", "fee")))
        if choice < 0.65:
            return LedgerOp.hold(spec, now, now + timedelta(hours=1))
        return LedgerOp.post(spec, now)

    def record(self, op: LedgerOp, result: OpResult) -> None:
        if result.status == "created":
            self.done.append(op)
            if op.kind == "pending":
                self.holds.append(op.id)


def _snapshot(connection: Connection, op: LedgerOp) -> dict[str, Any]:
    """What an operation may have written: every account's totals, the hot buffers, the open alerts and the
    transfer of its id."""

    def rows(sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return sorted(tuple(row) for row in connection.execute(text(sql), params))

    return {
        "accounts": rows(
            "SELECT code, debits_posted, credits_posted, debits_pending, credits_pending FROM ledger_accounts"
        ),
        "buffers": rows("SELECT account_id, debits_posted, credits_posted FROM ledger_hot_entries"),
        "alerts": rows("SELECT account_id, projected_fen, threshold_fen, cleared_at IS NULL FROM ledger_alerts"),
        "transfer": rows("SELECT * FROM ledger_transfers WHERE id = :id", id=op.id),
    }


def _outcome(result: OpResult) -> tuple[str, str, dict[str, Any]]:
    return result.status, result.message, result.details


if POSTGRES_URL:

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    def test_the_function_answers_and_writes_as_the_batch_engine_does(rt: Runtime) -> None:
        """Each operation runs through the batch engine in a savepoint that is then rolled back, and through
        the function from the same state: same code, message, details and writes."""
        maker, seen = OpMaker(seed=21), set()
        with rt.db.uow() as uow:
            repo = LedgerRepository(uow.session)
            for account in ACCOUNTS:
                repo.ensure_account(account)
            repo.post(TransferSpec("seed:a", "equity", "custody:a", 5_000, "arrival"))
            repo.post(TransferSpec("seed:b", "clearing", "custody:b", 3_000, "arrival"))
            connection = uow.session.connection()
            for _ in range(60):
                op, now = maker.next(), utcnow()
                savepoint = connection.begin_nested()
                engine_result = ledger_engine.execute(connection, [op], now)[0]
                engine_wrote = _snapshot(connection, op)
                savepoint.rollback()
                result = sql_posting.apply(connection, op, now)
                assert _outcome(result) == _outcome(engine_result), op
                assert _snapshot(connection, op) == engine_wrote, op
                maker.record(op, result)
                seen.add(result.status)
        assert seen == EVERY_OUTCOME

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    def test_one_posting_hold_post_or_void_is_one_statement(rt: Runtime) -> None:
        """Through the repository the services use, in the caller's transaction; the accounts the caller
        loaded before read their new totals afterwards."""
        with rt.db.uow() as uow:
            repo = LedgerRepository(uow.session)
            for account in ACCOUNTS:
                repo.ensure_account(account)
            uow.commit()
        executed: list[str] = []

        def count(_connection: object, _cursor: object, statement: str, *_args: object) -> None:
            executed.append(statement)

        with rt.db.uow() as uow:
            repo = LedgerRepository(uow.session)
            custody = uow.session.scalars(select(LedgerAccount).where(LedgerAccount.code == "custody:a")).one()
            assert custody.credits_posted == 0
            event.listen(rt.db.engine, "before_cursor_execute", count)
            try:
                steps = [
                    lambda: repo.post(TransferSpec("in", "clearing", "custody:a", 1_000, "arrival")),
                    lambda: repo.hold(TransferSpec("h1", "custody:a", "clearing", 400, "payout")),
                    lambda: repo.post_pending("h1:posted", "h1", 300),
                    lambda: repo.hold(TransferSpec("h2", "custody:a", "clearing", 200, "payout")),
                    lambda: repo.void_pending("h2:void", "h2"),
                ]
                for step in steps:
                    executed.clear()
                    transfer, created = step()
                    assert created and len(executed) == 1 and "ledger_apply" in executed[0], executed
                executed.clear()
                assert repo.totals("custody:a") == (300, 1_000, 0, 0)  # locked by this transaction: known
                assert executed == []
            finally:
                event.remove(rt.db.engine, "before_cursor_execute", count)
            assert (transfer.kind, transfer.pending_id, transfer.amount_fen) == ("void_pending", "h2", 200)
            assert custody.credits_posted == 1_000 and custody.debits_posted == 300
            uow.commit()
        with rt.db.uow() as uow:
            assert LedgerRepository(uow.session).totals("clearing") == (1_000, 300, 0, 0)
