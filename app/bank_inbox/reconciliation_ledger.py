"""Reconciliation from the ledger's side: every posting on the bank's clearing account must be a line of the
bank's statement, and the statement's closing balance must be what our ledger says the bank holds.

- A posting of the day (by our clock) on `bank_clearing:<bank>` that no statement line explains - on this
  statement or on another day's reconciled one (a notice processed just after midnight) - is an exception:
  an arrival the bank never booked (forged or mistaken) → `ledger_only`; a payout we posted as paid →
  `payout_missing`; anything else → `ledger_only`. A guarantee's freeze or unfreeze is the bank's own
  operation, acknowledged by its receipt, not a statement line: the balance check covers it.
- The closing balance (期末余额) against the ledger at the day's cut-off (日切, Asia/Shanghai midnight), plus the
  postings made after the cut-off for money the bank booked before it (in transit: late notices and this
  run's repairs). A difference → `balance_gap`; a statement without a closing balance → `invalid`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.bank_inbox.reconciliation_item import Item, chunks, day_bounds
from app.db.ledger_models import LedgerAccount, LedgerTransfer
from app.db.models import Deal
from app.db.reconciliation_models import ReconciliationItem, ReconciliationRun
from app.domain import ledger
from app.domain.ledger_batch import POSTED_KINDS
from app.domain.money import format_yuan
from app.domain.statements import StatementLine
from app.platform.runtime import Runtime

BANK_OPERATIONS = ("freeze", "unfreeze")  # ledger codes of the bank's freeze receipts: on no statement


@dataclass(frozen=True)
class Posting:
    transfer_id: str
    code: str
    signed_fen: int  # what it did to the clearing account (an asset): + debit, - credit
    deal_no: str | None
    created_at: datetime
    direction: str  # the statement line that explains it: credit, debit, or "" for none
    key: str  # its bank reference (credit) or payout id (debit), else its transfer id


def _explains(line: StatementLine) -> tuple[str, str]:
    """The (direction, key) of the postings a statement line explains."""
    return line.direction, (line.payout_id or "") if line.direction == "debit" else line.bank_reference


def _posting(bank_code: str, clearing_id: int, transfer: LedgerTransfer, deal_no: str | None) -> Posting:
    signed = transfer.amount_fen if transfer.debit_account_id == clearing_id else -transfer.amount_fen
    arrival = f"arrival:{bank_code}:"
    if transfer.id.startswith(arrival):
        direction, key = "credit", transfer.id.removeprefix(arrival)
    elif transfer.kind == "post_pending" and (transfer.pending_id or "").startswith("payout:"):
        direction, key = "debit", (transfer.pending_id or "").removeprefix("payout:")
    else:
        direction, key = "", transfer.id
    return Posting(transfer.id, transfer.code, signed, deal_no, transfer.created_at, direction, key)


def _postings(session: Session, bank_code: str, clearing_id: int, start: datetime) -> list[Posting]:
    """Posted transfers on the clearing account created at or after `start`."""
    rows = session.execute(
        select(LedgerTransfer, Deal.deal_no)
        .outerjoin(Deal, Deal.id == LedgerTransfer.deal_id)
        .where(
            or_(LedgerTransfer.debit_account_id == clearing_id, LedgerTransfer.credit_account_id == clearing_id),
            LedgerTransfer.kind.in_(POSTED_KINDS),
            LedgerTransfer.created_at >= start,
        )
        .order_by(LedgerTransfer.created_at, LedgerTransfer.id)
    )
    return [_posting(bank_code, clearing_id, transfer, deal_no) for transfer, deal_no in rows]


def _balance_before(session: Session, clearing_id: int, end: datetime) -> int:
    """The clearing account's posted balance from transfers created before `end`."""
    total = 0
    for column, sign in ((LedgerTransfer.debit_account_id, 1), (LedgerTransfer.credit_account_id, -1)):
        amounts = session.scalars(
            select(LedgerTransfer.amount_fen).where(
                column == clearing_id, LedgerTransfer.kind.in_(POSTED_KINDS), LedgerTransfer.created_at < end
            )
        )
        total += sign * sum(amounts)
    return total


def _on_statements(
    session: Session, bank_code: str, day: date, postings: list[Posting], *, earlier_only: bool
) -> set[tuple[str, str]]:
    """(direction, key) of these postings that a line of another day's reconciled statement shows (with
    `earlier_only`, of an earlier day's: the bank booked them before this day's cut-off)."""
    found: set[tuple[str, str]] = set()
    day_filter = ReconciliationRun.statement_date < day if earlier_only else ReconciliationRun.statement_date != day
    for direction, column in (("credit", ReconciliationItem.bank_reference), ("debit", ReconciliationItem.payout_id)):
        keys = sorted({posting.key for posting in postings if posting.direction == direction})
        for chunk in chunks(keys):
            rows = session.scalars(
                select(column)
                .join(ReconciliationRun)
                .where(
                    ReconciliationRun.bank_code == bank_code,
                    day_filter,
                    ReconciliationItem.row_no.is_not(None),
                    ReconciliationItem.direction == direction,
                    column.in_(chunk),
                )
            )
            found.update((direction, key) for key in rows if key is not None)
    return found


def _unexplained(posting: Posting) -> Item:
    amount = posting.signed_fen
    if posting.direction == "debit":
        return Item(
            "payout_missing",
            "平台记为付款成功，但银行对账单无此出金",
            our_amount_fen=-amount,
            payout_id=posting.key,
            deal_no=posting.deal_no,
            key=f"payout:{posting.key}",
        )
    if posting.direction == "credit":
        detail = "平台已记银行入账，但银行对账单无此来账（银行未入账，疑似伪造或错误的到账通知）"
        return Item(
            "ledger_only",
            detail,
            our_amount_fen=amount,
            deal_no=posting.deal_no,
            bank_reference=posting.key,
            key=f"ledger:{posting.transfer_id}",
        )
    return Item(
        "ledger_only",
        f"平台分录 {posting.transfer_id}（{posting.code}）在银行对账单上没有对应流水",
        our_amount_fen=abs(amount),
        deal_no=posting.deal_no,
        key=f"ledger:{posting.transfer_id}",
    )


def ledger_side(
    rt: Runtime, bank_code: str, day: date, lines: list[StatementLine], closing_fen: int | None
) -> tuple[list[Item], int]:
    """The items the ledger's side finds, and the ledger's balance of the bank at the cut-off (in transit
    included). Run after the statement's repairs, so that they count."""
    start, end = day_bounds(day)
    on_this = {_explains(line) for line in lines}
    with rt.db.uow() as uow:
        session = uow.session
        clearing_id = session.scalar(
            select(LedgerAccount.id).where(LedgerAccount.code == ledger.bank_clearing(bank_code).code)
        )
        postings = [] if clearing_id is None else _postings(session, bank_code, clearing_id, start)
        of_day = [p for p in postings if p.created_at < end and p.code not in BANK_OPERATIONS]
        unexplained = [p for p in of_day if (p.direction, p.key) not in on_this]
        seen_elsewhere = _on_statements(session, bank_code, day, unexplained, earlier_only=False)
        after = [p for p in postings if p.created_at >= end]
        booked_before = on_this | _on_statements(session, bank_code, day, after, earlier_only=True)
        at_cutoff = 0 if clearing_id is None else _balance_before(session, clearing_id, end)
    items = [_unexplained(p) for p in unexplained if (p.direction, p.key) not in seen_elsewhere]
    in_transit = sum(p.signed_fen for p in after if p.direction and (p.direction, p.key) in booked_before)
    ours = at_cutoff + in_transit
    if closing_fen is None:
        items.append(Item("invalid", "对账单没有期末余额行，无法核对余额", key=f"no_closing:{day.isoformat()}"))
    elif closing_fen != ours:
        detail = (
            f"银行期末余额 {format_yuan(closing_fen)}，平台日切余额 {format_yuan(ours)}"
            f"（其中日切后入账的在途款 {format_yuan(in_transit)}），差额 {format_yuan(closing_fen - ours)}"
        )
        key = f"balance:{day.isoformat()}:{closing_fen}:{ours}"
        items.append(Item("balance_gap", detail, our_amount_fen=ours, amount_fen=closing_fen, key=key))
    return items, ours
