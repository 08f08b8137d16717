"""Ledger storage: accounts with running totals, immutable transfers, idempotent posting, checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, event, exists, func, or_, select
from sqlalchemy.orm import Session, SessionTransaction, aliased

from app.db.base import utcnow
from app.db.ledger_models import LedgerAccount, LedgerHotEntry, LedgerTransfer
from app.db.upsert import insert_if_absent
from app.domain.ledger import (
    AccountSpec,
    DailyCutoff,
    Entry,
    HistoryLine,
    TransferSpec,
    balance_of,
    daily_cutoff,
    flag_violation,
    running_balances,
)
from app.domain.ledger_batch import POSTED_KINDS, AccountState, LedgerOp, OpResult, TransferRecord
from app.ledger import engine as ledger_engine
from app.ledger import sql_posting
from app.platform.errors import LedgerError

KNOWN = "cunguan.ledger.known"
TRANSFERS = LedgerTransfer.__table__


def _known(session: Session) -> ledger_engine.Known:
    """What this session's transaction knows of its ledger accounts (`ledger_engine.Known`)."""
    known = session.info.get(KNOWN)
    if known is None:
        known = session.info[KNOWN] = ledger_engine.Known()
    return known


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, _transaction: SessionTransaction) -> None:
    """Any rollback, a savepoint's too, may undo what the transaction knew: read it again."""
    session.info.pop(KNOWN, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_after_transaction(session: Session, transaction: SessionTransaction) -> None:
    """The locks end with the transaction (a savepoint's end keeps them)."""
    if transaction.parent is None:
        session.info.pop(KNOWN, None)


def _spec_of(account: LedgerAccount) -> AccountSpec:
    return AccountSpec(
        account.code,
        account.type,
        account.name,
        account.debits_must_not_exceed_credits,
        account.credits_must_not_exceed_debits,
    )


def account_row(spec: AccountSpec, deal_id: int | None, now: datetime) -> dict[str, Any]:
    """A new ledger account's row: its rules from the spec, all totals zero (for inserts, one or in bulk)."""
    return {
        "code": spec.code,
        "type": spec.type,
        "name": spec.name,
        "debits_must_not_exceed_credits": spec.debits_must_not_exceed_credits,
        "credits_must_not_exceed_debits": spec.credits_must_not_exceed_debits,
        "hot": spec.hot,
        "alert_below_fen": spec.alert_below_fen,
        "debits_posted": 0,
        "credits_posted": 0,
        "debits_pending": 0,
        "credits_pending": 0,
        "deal_id": deal_id,
        "created_at": now,
    }


class LedgerRepository:
    """The ledger inside a unit of work: every posting runs through the batch engine in the session's
    transaction, so it commits or rolls back with the caller's other changes (a deal's state, say)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def ensure_account(self, spec: AccountSpec, deal_id: int | None = None) -> LedgerAccount:
        """The account with this code, created if missing. Safe when two transactions create the same
        account at once (two first arrivals at a bank): the insert does nothing if the code exists."""
        account = self.session.scalar(select(LedgerAccount).where(LedgerAccount.code == spec.code))
        if account is not None:
            return account
        self.session.flush()
        insert_if_absent(self.session, LedgerAccount.__table__, account_row(spec, deal_id, utcnow()))
        return self.account(spec.code)

    def account(self, code: str) -> LedgerAccount:
        account = self.session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
        if account is None:
            raise LedgerError("账户不存在", code="UNKNOWN_ACCOUNT", details={"account": code})
        return account

    def totals(self, code: str) -> tuple[int, int, int, int]:
        """Exact (debits_posted, credits_posted, debits_pending, credits_pending), hot buffer included.
        An account this transaction has locked costs no statement."""
        return self._state(code).totals()

    def balance(self, code: str) -> int:
        state = self._state(code)
        return balance_of(state.type, state.debits_posted, state.credits_posted)

    def _state(self, code: str) -> AccountState:
        held = _known(self.session).held.get(code)
        if held is not None:
            return held
        state = ledger_engine.exact_state(self.session.connection(), code)
        if state is None:
            raise LedgerError("账户不存在", code="UNKNOWN_ACCOUNT", details={"account": code})
        return state

    def post(
        self, spec: TransferSpec, at: datetime | None = None, ensure: Sequence[tuple[AccountSpec, int | None]] = ()
    ) -> tuple[TransferRecord, bool]:
        """Post a transfer once. Returns (transfer, created), the transfer a `TransferRecord` (no ORM object).
        A repeat with the same id and content returns the first transfer; the same id with other content is
        an error. `ensure` names accounts (with their deal) to create if the transfer finds them missing - no
        statement when they exist."""
        op = LedgerOp.post(spec, at or utcnow())
        try:
            return self._one(op)
        except LedgerError as error:
            ensured = {account.code for account, _ in ensure}
            if error.code != "UNKNOWN_ACCOUNT" or (error.details or {}).get("account") not in ensured:
                raise
        for account, deal_id in ensure:
            self.ensure_account(account, deal_id)
        return self._one(op)

    def hold(
        self, spec: TransferSpec, at: datetime | None = None, timeout_s: float | None = None
    ) -> tuple[TransferRecord, bool]:
        """A pending transfer: the amount is reserved on both accounts until posted or voided."""
        now = at or utcnow()
        timeout_at = now + timedelta(seconds=timeout_s) if timeout_s is not None else None
        return self._one(LedgerOp.hold(spec, now, timeout_at))

    def post_pending(
        self, transfer_id: str, pending_id: str, amount_fen: int | None = None, at: datetime | None = None
    ) -> tuple[TransferRecord, bool]:
        """Post a hold, in full or for a smaller amount (the rest is released)."""
        return self._one(LedgerOp.resolve("post_pending", transfer_id, pending_id, at or utcnow(), amount_fen))

    def void_pending(
        self, transfer_id: str, pending_id: str, at: datetime | None = None
    ) -> tuple[TransferRecord, bool]:
        """Release a hold: nothing moves."""
        return self._one(LedgerOp.resolve("void_pending", transfer_id, pending_id, at or utcnow()))

    def reverse(self, transfer_id: str, reversal_id: str, at: datetime | None = None) -> tuple[TransferRecord, bool]:
        """Correct a posted transfer by an opposite one; the original stays as it was."""
        original = self.session.get(LedgerTransfer, transfer_id)
        if original is None or original.kind not in POSTED_KINDS:
            raise LedgerError("只能冲正已入账的分录", code="NOT_POSTED", details={"id": transfer_id})
        spec = TransferSpec(
            reversal_id,
            original.credit_account.code,
            original.debit_account.code,
            original.amount_fen,
            "reversal",
            original.deal_id,
        )
        return self.post(spec, at)

    def post_linked(self, specs: list[TransferSpec], at: datetime | None = None) -> list[TransferRecord]:
        """All of the transfers, or none of them (e.g. a release and its fee)."""
        now = at or utcnow()
        ops = [LedgerOp.post(spec, now, linked=index < len(specs) - 1) for index, spec in enumerate(specs)]
        return [transfer for transfer, _ in self.run(ops)]

    def void_expired(self, now: datetime) -> list[str]:
        """Void every hold whose timeout has passed; returns the voided pending ids."""
        resolution = aliased(LedgerTransfer)
        expired = list(
            self.session.scalars(
                select(LedgerTransfer.id)
                .outerjoin(resolution, resolution.pending_id == LedgerTransfer.id)
                .where(LedgerTransfer.kind == "pending", LedgerTransfer.timeout_at <= now, resolution.id.is_(None))
            )
        )
        self.run([LedgerOp.resolve("void_pending", f"expire:{pending_id}", pending_id, now) for pending_id in expired])
        return expired

    def run(self, ops: list[LedgerOp]) -> list[tuple[TransferRecord, bool]]:
        """Run ops as one batch; raises the first failure (then nothing of the batch was written).

        On PostgreSQL a single (unlinked) op is one statement (`sql_posting`). Otherwise the batch engine runs
        it; if a concurrent transaction posted one of its transfer ids first, the batch runs again and then
        reports that transfer as existing. A batch of one op needs nothing undone for that (see
        `ledger_engine.execute`); a larger one runs in a savepoint that is rolled back first."""
        self.session.flush()
        connection = self.session.connection()
        if len(ops) == 1 and not ops[0].linked and connection.dialect.name == "postgresql":
            results = [sql_posting.apply(connection, ops[0], utcnow(), _known(self.session))]
        else:
            results = self._run_looking(connection, ops)
        if self.session.identity_map:  # totals moved underneath the ORM's loaded accounts
            for obj in list(self.session.identity_map.values()):
                if isinstance(obj, LedgerAccount):
                    self.session.expire(obj)
        failures = [r for r in results if not r.ok]
        if failures:
            first = next((r for r in failures if r.status != "LINKED_OP_FAILED"), failures[0])
            raise LedgerError(first.message, code=first.status, details=first.details)
        return [(self._transfer(r), r.status == "created") for r in results]

    def _run_looking(self, connection: Connection, ops: list[LedgerOp]) -> list[OpResult]:
        """The batch with its transfer ids looked up, run up to three times while a concurrent transaction
        takes one of its ids first (a batch of one needs nothing undone; a larger one runs in a savepoint)."""
        attempt = 1
        while True:
            try:
                if len(ops) == 1:
                    return ledger_engine.execute(connection, ops, utcnow(), _known(self.session))
                with self.session.begin_nested():  # a rollback of it drops what the transaction knew
                    return ledger_engine.execute(connection, ops, utcnow(), _known(self.session))
            except ledger_engine.ConcurrentPosting:
                if attempt == 3:
                    raise
                attempt += 1

    def _one(self, op: LedgerOp) -> tuple[TransferRecord, bool]:
        return self.run([op])[0]

    def _transfer(self, result: OpResult) -> TransferRecord:
        """The transfer of a result: from its row when the result carries one (no statement), else read."""
        if result.row is not None:
            return TransferRecord(**result.row)
        row = self.session.execute(select(TRANSFERS).where(TRANSFERS.c.id == result.id)).mappings().one()
        return TransferRecord(**row)

    def fold_hot(self, now: datetime | None = None) -> int:
        """Fold every hot account's buffered postings into its totals (the worker does this often)."""
        return ledger_engine.fold_hot(self.session.connection(), now or utcnow())

    def transfers_for_deal(self, deal_id: int) -> list[LedgerTransfer]:
        return list(
            self.session.scalars(
                select(LedgerTransfer).where(LedgerTransfer.deal_id == deal_id).order_by(LedgerTransfer.created_at)
            )
        )


@dataclass(frozen=True)
class CheckReport:
    total_debits_fen: int
    total_credits_fen: int
    accounts_checked: int
    transfers_checked: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _sums_by_account(session: Session, side: Any, *conditions: Any) -> dict[int, int]:
    query = select(side, func.sum(LedgerTransfer.amount_fen)).where(*conditions).group_by(side)
    return {account_id: int(total) for account_id, total in session.execute(query).all()}


def _buffered_totals(session: Session) -> dict[int, tuple[int, int]]:
    """Hot postings not yet folded, per account: (debits, credits)."""
    query = select(
        LedgerHotEntry.account_id, func.sum(LedgerHotEntry.debits_posted), func.sum(LedgerHotEntry.credits_posted)
    ).group_by(LedgerHotEntry.account_id)
    return {account_id: (int(d), int(c)) for account_id, d, c in session.execute(query).all()}


def check_ledger(session: Session) -> CheckReport:
    """Debits equal credits overall; every account's posted and pending totals equal the sum of its
    transfers; no flag broken."""
    problems: list[str] = []
    posted = LedgerTransfer.kind.in_(POSTED_KINDS)
    resolution = aliased(LedgerTransfer)
    open_hold = (LedgerTransfer.kind == "pending") & ~exists().where(resolution.pending_id == LedgerTransfer.id)
    expected = {
        "debits_posted": _sums_by_account(session, LedgerTransfer.debit_account_id, posted),
        "credits_posted": _sums_by_account(session, LedgerTransfer.credit_account_id, posted),
        "debits_pending": _sums_by_account(session, LedgerTransfer.debit_account_id, open_hold),
        "credits_pending": _sums_by_account(session, LedgerTransfer.credit_account_id, open_hold),
    }
    accounts = session.scalars(select(LedgerAccount).order_by(LedgerAccount.code)).all()
    total_debits = total_credits = 0
    buffered = _buffered_totals(session)
    for account in accounts:
        extra_debits, extra_credits = buffered.get(account.id, (0, 0))
        totals = {
            "debits_posted": account.debits_posted + extra_debits,
            "credits_posted": account.credits_posted + extra_credits,
            "debits_pending": account.debits_pending,
            "credits_pending": account.credits_pending,
        }
        total_debits += totals["debits_posted"]
        total_credits += totals["credits_posted"]
        for column, sums in expected.items():
            if totals[column] != sums.get(account.id, 0):
                problems.append(f"账户 {account.code} 的 {column} 与分录合计不符")
        problem = flag_violation(_spec_of(account), *totals.values())
        if problem is not None:
            problems.append(problem)
    if total_debits != total_credits:
        problems.append(f"借贷不平：借方 {total_debits}，贷方 {total_credits}")
    transfer_count = session.scalar(select(func.count()).select_from(LedgerTransfer)) or 0
    return CheckReport(total_debits, total_credits, len(accounts), int(transfer_count), problems)


def _totals(session: Session, account: LedgerAccount, start: datetime | None, end: datetime | None) -> tuple[int, int]:
    """(debits, credits) of the account's transfers with start <= created_at < end."""
    totals = []
    for column in (LedgerTransfer.debit_account_id, LedgerTransfer.credit_account_id):
        query = select(func.coalesce(func.sum(LedgerTransfer.amount_fen), 0)).where(
            column == account.id, LedgerTransfer.kind.in_(POSTED_KINDS)
        )
        if start is not None:
            query = query.where(LedgerTransfer.created_at >= start)
        if end is not None:
            query = query.where(LedgerTransfer.created_at < end)
        totals.append(int(session.scalar(query) or 0))
    return totals[0], totals[1]


def balance_at(session: Session, code: str, at: datetime) -> int:
    """The account's balance as it was at `at` (transfers created at or before that instant)."""
    account = LedgerRepository(session).account(code)
    debits, credits = _totals(session, account, None, at + timedelta(microseconds=1))
    return balance_of(account.type, debits, credits)


def history(session: Session, code: str, limit: int = 200) -> list[HistoryLine]:
    """The account's latest `limit` entries, oldest first, each with the balance after it."""
    account = LedgerRepository(session).account(code)
    touching = or_(LedgerTransfer.debit_account_id == account.id, LedgerTransfer.credit_account_id == account.id)
    touching = touching & LedgerTransfer.kind.in_(POSTED_KINDS)
    newest = list(
        session.scalars(
            select(LedgerTransfer)
            .where(touching)
            .order_by(LedgerTransfer.created_at.desc(), LedgerTransfer.id.desc())
            .limit(limit)
        )
    )
    newest.reverse()
    if not newest:
        return []
    debits, credits = _totals(session, account, None, newest[0].created_at)
    opening = [Entry("(opening)", newest[0].created_at, "opening", debits, credits)] if debits or credits else []
    entries = opening + [
        Entry(
            t.id,
            t.created_at,
            t.code,
            t.amount_fen if t.debit_account_id == account.id else 0,
            t.amount_fen if t.credit_account_id == account.id else 0,
        )
        for t in newest
    ]
    return running_balances(account.type, entries)[len(opening) :]


def cutoff(session: Session, code: str, day: date, zone: ZoneInfo) -> DailyCutoff:
    """日切 for one account and one calendar day in `zone` (Asia/Shanghai for reports)."""
    account = LedgerRepository(session).account(code)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = start + timedelta(days=1)
    before = _totals(session, account, None, start)
    during = _totals(session, account, start, end)
    return daily_cutoff(account.type, day, before, during)
