"""Ledger storage: accounts with running totals, immutable transfers, idempotent posting, checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

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
        existing = self.session.get(LedgerTransfer, spec.id)
        if existing is not None:
            self._assert_same(existing, spec)
            return existing, False
        debit, credit = self._lock_pair(spec.debit_code, spec.credit_code)
        debit.debits_posted += spec.amount_fen
        credit.credits_posted += spec.amount_fen
        for account in (debit, credit):
            problem = flag_violation(_spec_of(account), account.debits_posted, account.credits_posted)
            if problem is not None:
                raise LedgerError(problem, code="BALANCE_CONSTRAINT", details={"account": account.code})
        transfer = LedgerTransfer(
            id=spec.id,
            debit_account_id=debit.id,
            credit_account_id=credit.id,
            amount_fen=spec.amount_fen,
            code=spec.code,
            deal_id=spec.deal_id,
            created_at=at or utcnow(),
        )
        self.session.add(transfer)
        self.session.flush()
        return transfer, True

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

    def _assert_same(self, existing: LedgerTransfer, spec: TransferSpec) -> None:
        same = (
            existing.debit_account.code == spec.debit_code
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


def check_ledger(session: Session) -> CheckReport:
    """Debits equal credits overall; every account's totals equal the sum of its transfers; no flag broken."""
    problems: list[str] = []
    debit_sums = dict(
        session.execute(
            select(LedgerTransfer.debit_account_id, func.sum(LedgerTransfer.amount_fen)).group_by(
                LedgerTransfer.debit_account_id
            )
        ).all()
    )
    credit_sums = dict(
        session.execute(
            select(LedgerTransfer.credit_account_id, func.sum(LedgerTransfer.amount_fen)).group_by(
                LedgerTransfer.credit_account_id
            )
        ).all()
    )
    accounts = session.scalars(select(LedgerAccount).order_by(LedgerAccount.code)).all()
    total_debits = total_credits = 0
    for account in accounts:
        total_debits += account.debits_posted
        total_credits += account.credits_posted
        if account.debits_posted != int(debit_sums.get(account.id, 0)):
            problems.append(f"账户 {account.code} 借方合计与分录不符")
        if account.credits_posted != int(credit_sums.get(account.id, 0)):
            problems.append(f"账户 {account.code} 贷方合计与分录不符")
        problem = flag_violation(_spec_of(account), account.debits_posted, account.credits_posted)
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
        query = select(func.coalesce(func.sum(LedgerTransfer.amount_fen), 0)).where(column == account.id)
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
