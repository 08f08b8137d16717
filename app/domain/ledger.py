"""Ledger rules, free of storage: chart of accounts, transfer validation and balance invariants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from app.platform.errors import LedgerError

ACCOUNT_TYPES = ("asset", "liability", "income", "expense", "equity")
TRANSFER_LABELS = {
    "arrival": "入金",
    "unmatched_arrival": "入金挂账",
    "release": "解除存管",
    "payout": "出金",
    "refund": "退款",
    "fee": "手续费",
    "freeze": "担保资金冻结",
    "unfreeze": "担保资金解冻",
    "reversal": "冲正",
}
TRANSFER_CODES = tuple(TRANSFER_LABELS)
KIND_LABELS = {"single": "记账", "pending": "冻结", "post_pending": "冻结转入账", "void_pending": "解冻"}


@dataclass(frozen=True)
class AccountSpec:
    code: str
    type: str
    name: str
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    hot: bool = False  # touched by most deals: safe postings are buffered, not row-locked
    alert_below_fen: int | None = None  # alert when the projected balance falls below this


@dataclass(frozen=True)
class TransferSpec:
    id: str
    debit_code: str
    credit_code: str
    amount_fen: int
    code: str
    deal_id: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.amount_fen, int) or isinstance(self.amount_fen, bool) or self.amount_fen <= 0:
            raise LedgerError("记账金额必须为正整数（分）", code="BAD_AMOUNT", details={"amount_fen": self.amount_fen})
        if self.debit_code == self.credit_code:
            raise LedgerError("借贷账户不能相同", code="SAME_ACCOUNT", details={"account": self.debit_code})
        if self.code not in TRANSFER_CODES:
            raise LedgerError("未知的记账类型", code="UNKNOWN_TRANSFER_CODE", details={"code": self.code})
        if not self.id or len(self.id) > 96:
            raise LedgerError("记账编号无效", code="BAD_TRANSFER_ID", details={"id": self.id})


# Chart of accounts. The bank's clearing account is an asset (money the bank holds for us); what we
# owe to parties are liabilities that may never go below zero (debits must not exceed credits).
def bank_clearing(bank_code: str) -> AccountSpec:
    return AccountSpec(
        f"bank_clearing:{bank_code}",
        "asset",
        f"银行清算户（{bank_code}）",
        credits_must_not_exceed_debits=True,
        hot=True,
    )


def suspense(bank_code: str) -> AccountSpec:
    return AccountSpec(
        f"suspense:{bank_code}", "liability", f"挂账（{bank_code}）", debits_must_not_exceed_credits=True, hot=True
    )


def fee_income() -> AccountSpec:
    return AccountSpec("fee_income", "income", "手续费收入", hot=True)


def deal_custody(deal_no: str) -> AccountSpec:
    return AccountSpec(f"custody:{deal_no}", "liability", f"存管资金 {deal_no}", debits_must_not_exceed_credits=True)


def balance_of(account_type: str, debits_fen: int, credits_fen: int) -> int:
    """Natural-side balance: debit-normal for assets and expenses, credit-normal otherwise."""
    if account_type in ("asset", "expense"):
        return debits_fen - credits_fen
    return credits_fen - debits_fen


def flag_violation(
    spec: AccountSpec,
    debits_posted: int,
    credits_posted: int,
    debits_pending: int = 0,
    credits_pending: int = 0,
) -> str | None:
    """The Chinese description of the broken flag, or None. Holds count against the balance they hold."""
    if spec.debits_must_not_exceed_credits and debits_posted + debits_pending > credits_posted:
        return f"账户 {spec.code} 可用余额不足（借方 {debits_posted} + 冻结 {debits_pending} > 贷方 {credits_posted}）"
    if spec.credits_must_not_exceed_debits and credits_posted + credits_pending > debits_posted:
        return f"账户 {spec.code} 贷方超过借方（{credits_posted} + 冻结 {credits_pending} > {debits_posted}）"
    return None


@dataclass(frozen=True)
class Entry:
    """One side of a transfer as seen from one account."""

    transfer_id: str
    at: datetime
    code: str
    debit_fen: int
    credit_fen: int


@dataclass(frozen=True)
class HistoryLine:
    entry: Entry
    balance_fen: int


def running_balances(account_type: str, entries: list[Entry]) -> list[HistoryLine]:
    """Each entry with the account's natural-side balance right after it (entries in time order)."""
    debits = credits = 0
    lines = []
    for entry in entries:
        debits += entry.debit_fen
        credits += entry.credit_fen
        lines.append(HistoryLine(entry, balance_of(account_type, debits, credits)))
    return lines


@dataclass(frozen=True)
class DailyCutoff:
    """日切: the day's opening balance, movements and closing balance of one account."""

    day: date
    opening_fen: int
    debits_fen: int
    credits_fen: int
    closing_fen: int


def daily_cutoff(account_type: str, day: date, before: tuple[int, int], during: tuple[int, int]) -> DailyCutoff:
    """From (debits, credits) totals before the day and during it."""
    opening = balance_of(account_type, *before)
    closing = balance_of(account_type, before[0] + during[0], before[1] + during[1])
    return DailyCutoff(day, opening, during[0], during[1], closing)
