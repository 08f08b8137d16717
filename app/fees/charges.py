"""Charging a deal's fees (rules: `app.domain.fees`): what a release pays, the ledger transfers that move a fee
from the deal's custody to the platform's fee income account, and the fees charged on arrival.

A fee never leaves the bank: it is an internal ledger move (`custody:<deal>` → `fee_income`); paying fee income
out to the platform's own account is not done here. Transfer ids: `fee:<payout id>:<rule index>` for a release's
fee (posted in the same ledger batch as the payout's posting, `app.payouts.holds`), `fee:<deal>:arrival:<rule
index>` for an arrival fee and `…:refund` for its return when the deal fails."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.ledger_models import LedgerTransfer
from app.db.models import Deal, Payout
from app.deals.pinning import pinned_city
from app.domain import fees as rules
from app.domain import ledger
from app.domain.fees import FeeRule
from app.domain.ledger import TransferSpec
from app.ledger.repo import LedgerRepository
from app.payouts import payees
from app.platform.errors import WorkflowError
from app.platform.runtime import Runtime


def fee_rules(rt: Runtime, session: Session, deal: Deal) -> tuple[FeeRule, ...]:
    """The fees of the deal's product in the config it pinned."""
    return pinned_city(rt, session, deal).product(deal.product).fees


def release_fees(rt: Runtime, session: Session, deal: Deal, gross_fen: int) -> dict[str, int]:
    """The fees a release of `gross_fen` pays, by rule index (as `Payout.fees` keeps them); what is left is paid
    to the payee, which must be something."""
    configured = fee_rules(rt, session, deal)
    if not configured:
        return {}
    base = payees.agreed_release_fen(deal, rt.products)  # a fee is computed on what the agreement releases in all
    before = base - payees.release_room_fen(session, deal, rt.products)  # releases paid or in flight, fees included
    shares = rules.release_fees(configured, base, before, gross_fen)
    if sum(shares.values()) >= gross_fen:
        raise WorkflowError(
            "费用不低于本次放款金额，无法放款",
            code="FEE_ABOVE_RELEASE",
            details={"deal_no": deal.deal_no, "gross_fen": gross_fen, "fee_fen": sum(shares.values())},
        )
    return {str(index): fen for index, fen in shares.items()}


def release_fee_transfers(payout: Payout, deal_no: str) -> list[TransferSpec]:
    """The fee transfers a paid release posts with its payout (custody → fee income)."""
    return [
        TransferSpec(
            id=f"fee:{payout.payout_id}:{index}",
            debit_code=ledger.deal_custody(deal_no).code,
            credit_code=ledger.fee_income().code,
            amount_fen=fen,
            code="fee",
            deal_id=payout.deal_id,
        )
        for index, fen in sorted((payout.fees or {}).items(), key=lambda item: int(item[0]))
    ]


def _arrival_transfers(rt: Runtime, session: Session, deal: Deal) -> list[tuple[FeeRule, TransferSpec]]:
    """Each fee the paying party pays on arrival, with its transfer (custody → fee income)."""
    configured = fee_rules(rt, session, deal)
    return [
        (
            configured[index],
            TransferSpec(
                id=f"fee:{deal.deal_no}:arrival:{index}",
                debit_code=ledger.deal_custody(deal.deal_no).code,
                credit_code=ledger.fee_income().code,
                amount_fen=fen,
                code="fee",
                deal_id=deal.id,
            ),
        )
        for index, fen in rules.arrival_fees(configured, deal.custody_amount_fen).items()
    ]


def _posted(session: Session, transfer_id: str) -> bool:
    return session.get(LedgerTransfer, transfer_id) is not None


def arrival_fee_due(rt: Runtime, session: Session, deal: Deal) -> int:
    """What the paying party still owes in fees on arrival (custody must cover the custody amount and this
    before the deal is fully funded)."""
    return sum(spec.amount_fen for _, spec in _arrival_transfers(rt, session, deal) if not _posted(session, spec.id))


def charge_on_arrival(rt: Runtime, session: Session, deal: Deal) -> None:
    """On an arrival to a deal waiting to be fully funded: once custody holds the custody amount plus the fees
    due on arrival, move the fees to fee income (one linked batch, each once: `fee:<deal>:arrival:<rule>`)."""
    definition = rt.workflow(deal.workflow_id, deal.workflow_version)
    waiting = any(
        t.source == deal.state and t.event == "funds_arrived" and t.guard == "fully_funded"
        for t in definition.transitions
    )
    due = (
        [spec for _, spec in _arrival_transfers(rt, session, deal) if not _posted(session, spec.id)] if waiting else []
    )
    if not due:
        return
    repo = LedgerRepository(session)
    debits, credits, held, _ = repo.totals(ledger.deal_custody(deal.deal_no).code)
    if credits - debits - held >= deal.custody_amount_fen + sum(spec.amount_fen for spec in due):
        repo.ensure_account(ledger.fee_income())
        repo.post_linked(due, at=rt.clock())


def return_arrival_fees(rt: Runtime, session: Session, deal: Deal) -> None:
    """The deal failed and its custody goes back: fees charged on arrival whose rule says `on_failure: refund`
    go back to custody first (a reversal, `…:refund`), so the refund returns them; `keep` keeps them."""
    for rule, spec in _arrival_transfers(rt, session, deal):
        if rule.on_failure == "refund" and _posted(session, spec.id):
            LedgerRepository(session).reverse(spec.id, f"{spec.id}:refund", at=rt.clock())
