"""Ledger storage: accounts with running totals, immutable transfers, idempotent posting, checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from app.db.base import utcnow
from app.db.models import LedgerAccount, LedgerTransfer
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
from app.errors import LedgerError


def _spec_of(account: LedgerAccount) -> AccountSpec:
    return AccountSpec(
        account.code,
        account.type,
        account.name,
        account.debits_must_not_exceed_credits,
        account.credits_must_not_exceed_debits,
    )


POSTED_KINDS = ("single", "post_pending")


class LedgerRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def ensure_account(self, spec: AccountSpec, deal_id: int | None = None) -> LedgerAccount:
        account = self.session.scalar(select(LedgerAccount).where(LedgerAccount.code == spec.code))
        if account is not None:
            return account
        account = LedgerAccount(
            code=spec.code,
            type=spec.type,
            name=spec.name,
            debits_must_not_exceed_credits=spec.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=spec.credits_must_not_exceed_debits,
            debits_posted=0,
            credits_posted=0,
            deal_id=deal_id,
        )
        self.session.add(account)
        self.session.flush()
        return account

    def account(self, code: str) -> LedgerAccount:
        account = self.session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
        if account is None:
            raise LedgerError("账户不存在", code="UNKNOWN_ACCOUNT", details={"account": code})
        return account

    def balance(self, code: str) -> int:
        account = self.account(code)
        return balance_of(account.type, account.debits_posted, account.credits_posted)

    def post(self, spec: TransferSpec, at: datetime | None = None) -> tuple[LedgerTransfer, bool]:
        """Post a transfer once. Returns (transfer, created). A repeat with the same id and content
        returns the first transfer; the same id with other content is an error."""
        return self._record(spec, "single", at or utcnow(), None)

    def hold(
        self, spec: TransferSpec, at: datetime | None = None, timeout_s: float | None = None
    ) -> tuple[LedgerTransfer, bool]:
        """A pending transfer: the amount is reserved on both accounts until posted or voided."""
        now = at or utcnow()
        timeout_at = now + timedelta(seconds=timeout_s) if timeout_s is not None else None
        return self._record(spec, "pending", now, timeout_at)

    def post_pending(
        self, transfer_id: str, pending_id: str, amount_fen: int | None = None, at: datetime | None = None
    ) -> tuple[LedgerTransfer, bool]:
        """Post a hold, in full or for a smaller amount (the rest is released)."""
        return self._resolve(transfer_id, pending_id, "post_pending", amount_fen, at or utcnow())

    def void_pending(
        self, transfer_id: str, pending_id: str, at: datetime | None = None
    ) -> tuple[LedgerTransfer, bool]:
        """Release a hold: nothing moves."""
        return self._resolve(transfer_id, pending_id, "void_pending", None, at or utcnow())

    def reverse(self, transfer_id: str, reversal_id: str, at: datetime | None = None) -> tuple[LedgerTransfer, bool]:
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

    def post_linked(self, specs: list[TransferSpec], at: datetime | None = None) -> list[LedgerTransfer]:
        """All of the transfers, or none of them (e.g. a release and its fee)."""
        with self.session.begin_nested():
            return [self.post(spec, at)[0] for spec in specs]

    def void_expired(self, now: datetime) -> list[str]:
        """Void every hold whose timeout has passed; returns the voided pending ids."""
        resolution = aliased(LedgerTransfer)
        expired = self.session.scalars(
            select(LedgerTransfer.id)
            .outerjoin(resolution, resolution.pending_id == LedgerTransfer.id)
            .where(LedgerTransfer.kind == "pending", LedgerTransfer.timeout_at <= now, resolution.id.is_(None))
        ).all()
        for pending_id in expired:
            self.void_pending(f"expire:{pending_id}", pending_id, now)
        return list(expired)

    def _record(
        self, spec: TransferSpec, kind: str, at: datetime, timeout_at: datetime | None
    ) -> tuple[LedgerTransfer, bool]:
        existing = self.session.get(LedgerTransfer, spec.id)
        if existing is not None:
            self._assert_same(existing, spec, kind)
            return existing, False
        debit, credit = self._lock_pair(spec.debit_code, spec.credit_code)
        column = "pending" if kind == "pending" else "posted"
        self._apply(debit, credit, {column: spec.amount_fen})
        return self._insert(
            id=spec.id,
            debit_account_id=debit.id,
            credit_account_id=credit.id,
            amount_fen=spec.amount_fen,
            code=spec.code,
            kind=kind,
            timeout_at=timeout_at,
            deal_id=spec.deal_id,
            created_at=at,
        )

    def _resolve(
        self, transfer_id: str, pending_id: str, kind: str, amount_fen: int | None, at: datetime
    ) -> tuple[LedgerTransfer, bool]:
        existing = self.session.get(LedgerTransfer, transfer_id)
        if existing is not None:
            same = existing.kind == kind and existing.pending_id == pending_id
            if not same or (amount_fen is not None and existing.amount_fen != amount_fen):
                raise LedgerError("同一记账编号的内容不一致", code="TRANSFER_ID_CONFLICT", details={"id": transfer_id})
            return existing, False
        pending = self._unresolved_pending(pending_id)
        amount = pending.amount_fen if amount_fen is None else amount_fen
        if kind == "post_pending" and not 0 < amount <= pending.amount_fen:
            raise LedgerError(
                "入账金额必须大于零且不超过冻结金额",
                code="BAD_AMOUNT",
                details={"pending_fen": pending.amount_fen, "amount_fen": amount},
            )
        debit, credit = self._lock_pair(pending.debit_account.code, pending.credit_account.code)
        self._apply(debit, credit, {"pending": -pending.amount_fen, "posted": amount if kind == "post_pending" else 0})
        return self._insert(
            id=transfer_id,
            debit_account_id=debit.id,
            credit_account_id=credit.id,
            amount_fen=amount,
            code=pending.code,
            kind=kind,
            pending_id=pending_id,
            deal_id=pending.deal_id,
            created_at=at,
        )

    def _insert(self, **columns: Any) -> tuple[LedgerTransfer, bool]:
        transfer = LedgerTransfer(**columns)
        self.session.add(transfer)
        self.session.flush()
        return transfer, True

    def _unresolved_pending(self, pending_id: str) -> LedgerTransfer:
        pending = self.session.get(LedgerTransfer, pending_id)
        if pending is None or pending.kind != "pending":
            raise LedgerError("冻结分录不存在", code="PENDING_NOT_FOUND", details={"pending_id": pending_id})
        resolved = self.session.scalar(select(LedgerTransfer.id).where(LedgerTransfer.pending_id == pending_id))
        if resolved is not None:
            raise LedgerError(
                "该冻结已处理，不能重复入账或解冻",
                code="PENDING_ALREADY_RESOLVED",
                details={"pending_id": pending_id, "by": resolved},
            )
        return pending

    def _apply(self, debit: LedgerAccount, credit: LedgerAccount, deltas: dict[str, int]) -> None:
        """Move the totals by `deltas` ({"posted"|"pending": fen}) if no flag breaks; else change nothing."""
        after = {
            account: {
                "debits_posted": account.debits_posted + (deltas.get("posted", 0) if account is debit else 0),
                "credits_posted": account.credits_posted + (deltas.get("posted", 0) if account is credit else 0),
                "debits_pending": account.debits_pending + (deltas.get("pending", 0) if account is debit else 0),
                "credits_pending": account.credits_pending + (deltas.get("pending", 0) if account is credit else 0),
            }
            for account in (debit, credit)
        }
        for account, totals in after.items():
            problem = flag_violation(_spec_of(account), **totals)
            if problem is not None:
                raise LedgerError(problem, code="BALANCE_CONSTRAINT", details={"account": account.code})
        for account, totals in after.items():
            for column, value in totals.items():
                setattr(account, column, value)

    def _lock_pair(self, debit_code: str, credit_code: str) -> tuple[LedgerAccount, LedgerAccount]:
        """Row-lock both accounts in a fixed order (by code) so that concurrent posters cannot deadlock."""
        rows = self.session.scalars(
            select(LedgerAccount)
            .where(LedgerAccount.code.in_([debit_code, credit_code]))
            .order_by(LedgerAccount.code)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        by_code = {row.code: row for row in rows}
        for code in (debit_code, credit_code):
            if code not in by_code:
                raise LedgerError("账户不存在", code="UNKNOWN_ACCOUNT", details={"account": code})
        return by_code[debit_code], by_code[credit_code]

    def _assert_same(self, existing: LedgerTransfer, spec: TransferSpec, kind: str) -> None:
        same = (
            existing.kind == kind
            and existing.debit_account.code == spec.debit_code
            and existing.credit_account.code == spec.credit_code
            and existing.amount_fen == spec.amount_fen
            and existing.code == spec.code
        )
        if not same:
            raise LedgerError("同一记账编号的内容不一致", code="TRANSFER_ID_CONFLICT", details={"id": spec.id})

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
    for account in accounts:
        total_debits += account.debits_posted
        total_credits += account.credits_posted
        for column, sums in expected.items():
            if getattr(account, column) != sums.get(account.id, 0):
                problems.append(f"账户 {account.code} 的 {column} 与分录合计不符")
        problem = flag_violation(
            _spec_of(account),
            account.debits_posted,
            account.credits_posted,
            account.debits_pending,
            account.credits_pending,
        )
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
