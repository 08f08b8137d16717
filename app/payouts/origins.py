"""Where a deal's money came from (原路): every custody credit records its origin, and a refund may give an
origin back at most what it paid less what it already got back (refunds paid or still in flight)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Deal, Payout
from app.db.payee_models import PayoutOrigin
from app.db.write_batch import inserting, write
from app.payouts.status import PayoutPurpose, PayoutStatus

RECORD = inserting(PayoutOrigin.__table__, ["deal_id", "transfer_id", "account", "name", "amount_fen", "arrived_at"])


@dataclass(frozen=True)
class Origin:
    """One account money came from for a deal: what it paid in all, and what went back to it."""

    account: str
    name: str | None
    paid_fen: int
    refunded_fen: int

    @property
    def left_fen(self) -> int:
        return self.paid_fen - self.refunded_fen


def record(
    session: Session, deal: Deal, transfer_id: str, account: str, name: str | None, amount_fen: int, at: datetime
) -> None:
    """Note where a credit to the deal's custody came from (once per credit: its ledger transfer id); nothing
    reads it back here, so it may wait for the transaction's next statement (`write_batch`)."""
    row = {"deal_id": deal.id, "transfer_id": transfer_id, "account": account, "name": name}
    write(session, RECORD, {**row, "amount_fen": amount_fen, "arrived_at": at})


def refunds_by_account(payouts: list[Payout]) -> dict[str, int]:
    """What refunds paid or still in flight give each account (a failed refund gave nothing back)."""
    given: dict[str, int] = {}
    for payout in payouts:
        if payout.purpose == PayoutPurpose.REFUND and payout.status != PayoutStatus.FAILED:
            given[payout.payee_account] = given.get(payout.payee_account, 0) + payout.amount_fen
    return given


def of_deal(session: Session, deal_id: int) -> list[Origin]:
    """The deal's origins in order of their first credit, one per account."""
    rows = session.scalars(select(PayoutOrigin).where(PayoutOrigin.deal_id == deal_id).order_by(PayoutOrigin.id))
    payouts = list(session.scalars(select(Payout).where(Payout.deal_id == deal_id)))
    return combine(list(rows), refunds_by_account(payouts))


def combine(rows: list[PayoutOrigin], refunded: dict[str, int]) -> list[Origin]:
    """Origin rows (in credit order) summed per account, with what each account got back."""
    paid: dict[str, int] = {}
    names: dict[str, str | None] = {}
    for row in rows:
        paid[row.account] = paid.get(row.account, 0) + row.amount_fen
        names.setdefault(row.account, row.name)
    return [Origin(account, names[account], amount, refunded.get(account, 0)) for account, amount in paid.items()]
