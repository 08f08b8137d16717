"""Crediting a deal's custody: the one function every path that gives a deal its money calls - an arrival
(`arrival:<bank>:<ref>`, from the bank's clearing account), money matched after a late `account_opened`
(`rematch:<bank>:<ref>`, from suspense) and money finance matched by hand (`match:<bank>:<ref>`, from
suspense). Reconciliation's 补单 comes through the arrival's handler. The transfer id is the bank's
reference, so the same money is credited once whatever carries it; its origin (the payer's account) is recorded with
it, and the deal's workflow hears of it (with where the money came from) only when it was credited now. The
credit that makes the deal fully funded also charges the fees the payer pays on arrival (`app.fees`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from app.db.models import Deal
from app.deals.case_blocks import arrival_coverage, arrival_event
from app.deals.workflow import DealContext, fire_or_note
from app.domain import ledger
from app.domain.ledger import AccountSpec, TransferSpec
from app.fees.charges import charge_on_arrival
from app.ledger.repo import LedgerRepository
from app.payouts import origins
from app.platform.runtime import Runtime

CreditKind = Literal["arrival", "rematch", "match"]


def credit_transfer_id(kind: CreditKind, bank_code: str, bank_reference: str) -> str:
    """The ledger transfer id of money the bank booked under `bank_reference` (an arrival's id is also the
    one of its posting to suspense, so the same money lands in custody or suspense, never both)."""
    return f"{kind}:{bank_code}:{bank_reference}"


@dataclass(frozen=True)
class Credit:
    """Money for a deal: how it came (the kind names the transfer id and the account it comes from), how
    much, the bank's reference, and who paid it."""

    kind: CreditKind
    bank_code: str
    bank_reference: str
    amount_fen: int
    payer_name: str | None
    payer_account: str | None

    def source(self) -> AccountSpec:
        """An arrival comes from the bank's clearing account; money matched later from suspense."""
        return ledger.bank_clearing(self.bank_code) if self.kind == "arrival" else ledger.suspense(self.bank_code)


def credit_custody(
    rt: Runtime, session: Session, deal: Deal, credit: Credit, actor: str, detail: dict[str, Any]
) -> str:
    """Post the credit into `custody:<deal_no>` (idempotent on its transfer id) and fire the deal's arrival
    event (`funds_arrived`, or `fund_drawn` while it waits for the fund centre) with the origin as payload,
    so the workflow records where the money came from. Returns the event's outcome, or
    `duplicate_bank_reference` when this money was credited before (then nothing else happens)."""
    source, custody = credit.source(), ledger.deal_custody(deal.deal_no)
    transfer_id = credit_transfer_id(credit.kind, credit.bank_code, credit.bank_reference)
    _, created = LedgerRepository(session).post(
        TransferSpec(
            id=transfer_id,
            debit_code=source.code,
            credit_code=custody.code,
            amount_fen=credit.amount_fen,
            code="arrival",
            deal_id=deal.id,
        ),
        at=rt.clock(),
        ensure=[(source, None), (custody, deal.id)],
    )
    if not created:
        return "duplicate_bank_reference"
    if credit.payer_account:  # whatever the deal's state: a refund may go back there (原路退回)
        origins.record(
            session, deal, transfer_id, credit.payer_account, credit.payer_name, credit.amount_fen, rt.clock()
        )
    charge_on_arrival(rt, session, deal)  # fees the payer pays on arrival, once custody covers them
    origin = {"payer_account": credit.payer_account, "payer_name": credit.payer_name, "amount_fen": credit.amount_fen}
    ctx, event = DealContext(rt, session, deal, actor, origin), arrival_event(rt, deal)
    detail = {"amount_fen": credit.amount_fen, "bank_reference": credit.bank_reference, **detail}
    return fire_or_note(ctx, event, {**detail, **arrival_coverage(ctx, event)})
