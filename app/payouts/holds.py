"""A payout's hold: the one place the ledger reserves, posts or voids the money of a payout.

While the bank works the amount is a pending transfer out of where the money is (the deal's custody for a
release or refund, the bank's suspense for a return) into the bank's clearing account, so the same money
cannot be paid twice; the bank's result posts it (paid) or voids it (free again). Transfer ids are
`payout:<payout id>`, `…:posted` and `…:void`: a repeat of either resolution is a no-op.

A release that pays fees (`Payout.fees`, `app.fees`) holds its gross, payout and fees together; when the bank
paid, one ledger batch posts the payout's part of the hold (the rest is released) and moves each fee from
custody to fee income (`fee:<payout id>:<rule>`): the fee is charged with its paid release, never without it and
never twice; a release the bank did not pay voids the whole hold and charges nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from app.db.models import Payout
from app.domain import ledger
from app.domain.ledger import AccountSpec, TransferSpec
from app.domain.ledger_batch import LedgerOp
from app.fees.charges import release_fee_transfers
from app.ledger.repo import LedgerRepository
from app.payouts.status import PayoutPurpose, PayoutStatus


def hold_id(payout_id: str) -> str:
    return f"payout:{payout_id}"


def source_of(payout: Payout, deal_no: str | None) -> AccountSpec:
    """Where a payout's money is held from: suspense for a return (which may have no deal), else the deal's
    custody."""
    if payout.purpose == PayoutPurpose.RETURN:
        return ledger.suspense(payout.bank_code)
    assert deal_no is not None, "a release or refund pays out of its deal's custody"
    return ledger.deal_custody(deal_no)


def hold(session: Session, payout: Payout, deal_no: str | None, at: datetime) -> None:
    """Reserve the payout's amount (source -> bank clearing) until the bank's result."""
    LedgerRepository(session).hold(
        TransferSpec(
            id=hold_id(payout.payout_id),
            debit_code=source_of(payout, deal_no).code,
            credit_code=ledger.bank_clearing(payout.bank_code).code,
            amount_fen=payout.amount_fen + payout.fee_fen,
            # ledger codes as they always were: a deal's payout or refund is "payout", a return "refund"
            code="refund" if payout.purpose == PayoutPurpose.RETURN else "payout",
            deal_id=payout.deal_id,
        ),
        at=at,
    )


def settle(session: Session, payout: Payout, at: datetime) -> None:
    """The bank paid: the hold becomes a posted movement (idempotent)."""
    held = hold_id(payout.payout_id)
    if not payout.fee_fen:
        LedgerRepository(session).post_pending(f"{held}:posted", held, at=at)
        return
    assert payout.deal is not None, "a release with fees pays out of its deal's custody"
    paid = LedgerOp.resolve("post_pending", f"{held}:posted", held, at, payout.amount_fen)
    fees = [LedgerOp.post(spec, at) for spec in release_fee_transfers(payout, payout.deal.deal_no)]
    ops = [paid, *fees]
    repo = LedgerRepository(session)
    repo.ensure_account(ledger.fee_income())
    repo.run([replace(op, linked=index < len(ops) - 1) for index, op in enumerate(ops)])


def release(session: Session, payout: Payout, at: datetime) -> None:
    """The bank did not pay: the hold is voided, the money free again for a retry or a refund (idempotent)."""
    held = hold_id(payout.payout_id)
    LedgerRepository(session).void_pending(f"{held}:void", held, at=at)


def resolve(session: Session, payout: Payout, at: datetime) -> None:
    """Post or void the hold of a payout whose status just became final."""
    assert payout.status in (PayoutStatus.SUCCEEDED, PayoutStatus.FAILED), payout.status
    if payout.status == PayoutStatus.SUCCEEDED:
        settle(session, payout, at)
    else:
        release(session, payout, at)
