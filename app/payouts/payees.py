"""The payee and amount rules, checked by the lifecycle before any payout row of a deal exists.

Money leaves a deal's custody only to
(a) the account the signed agreement names for the receiving role (seller, landlord, contractor, an intent
    deposit's developer, a guarantee's beneficiary) - a release;
(b) an account money came from (原路), at most what it paid less what it already got back - a refund;
(c) an account an amendment added that a second person approved - a release.
A release never exceeds what the agreement allows; what is paid in beyond it goes back by original route.
The query functions at the end find payouts that break these rules (the simulation's invariants)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Deal, Payout
from app.db.payee_models import PayoutOrigin
from app.domain.products import ProductRegistry
from app.payouts import amendments, origins
from app.payouts.agreed import agreed_release_fen
from app.payouts.status import PayoutPurpose, PayoutStatus
from app.platform.errors import CunguanError


class PayeeRefused(CunguanError):
    """A payout the payee or amount rule does not allow; nothing was created."""

    code = "PAYEE_REFUSED"
    http_status = 409


def release_room_fen(session: Session, deal: Deal, products: ProductRegistry) -> int:
    """What the agreement still allows to be released (less the releases paid or in flight)."""
    payouts = list(session.scalars(select(Payout).where(Payout.deal_id == deal.id)))
    return agreed_release_fen(deal, products) - _released_fen(payouts)


def release_accounts(session: Session, deal: Deal) -> set[str]:
    """Accounts a release may go to: the agreement's, and those of approved amendments."""
    named = {deal.seller_bank_account} if deal.seller_bank_account else set()
    return named | {amendment.account for amendment in amendments.approved(session, deal.id)}


def _released_fen(payouts: list[Payout]) -> int:
    """What the releases among `payouts` paid or hold in flight, their fees included (failed ones gave their money
    back)."""
    return sum(
        p.amount_fen + p.fee_fen
        for p in payouts
        if p.purpose == PayoutPurpose.RELEASE and p.status != PayoutStatus.FAILED
    )


def check(
    session: Session, deal: Deal, products: ProductRegistry, purpose: PayoutPurpose, account: str, amount_fen: int
) -> None:
    """Refuse (PayeeRefused) a release or refund of the deal the rules do not allow."""
    payouts = list(session.scalars(select(Payout).where(Payout.deal_id == deal.id)))
    details = {"deal_no": deal.deal_no, "amount_fen": amount_fen}
    if purpose == PayoutPurpose.RELEASE:
        if account not in release_accounts(session, deal):
            raise PayeeRefused(
                "收款账户不是协议约定的收款方账户，也没有经第二人审批的变更，不能付款",
                code="PAYEE_NOT_IN_AGREEMENT",
                details=details,
            )
        released = _released_fen(payouts)
        agreed = agreed_release_fen(deal, products)
        if released + amount_fen > agreed:
            raise PayeeRefused(
                "付款金额超过协议约定的金额，超出部分只能原路退回",
                code="AMOUNT_ABOVE_AGREEMENT",
                details={**details, "released_fen": released, "agreed_fen": agreed},
            )
        return
    origin = next((o for o in origins.of_deal(session, deal.id) if o.account == account), None)
    if origin is None:
        raise PayeeRefused(
            "退款只能原路退回付款账户，该账户没有向本存管单付过款", code="PAYEE_NOT_ORIGIN", details=details
        )
    if amount_fen > origin.left_fen:
        raise PayeeRefused(
            "退款金额超过该账户付入且尚未退回的金额",
            code="REFUND_ABOVE_ORIGIN",
            details={**details, "left_fen": origin.left_fen},
        )


@dataclass(frozen=True)
class Violation:
    deal_no: str
    rule: str  # PAYEE_NOT_IN_AGREEMENT | PAYEE_NOT_ORIGIN | REFUND_ABOVE_ORIGIN | AMOUNT_ABOVE_AGREEMENT
    payout_id: str | None
    amount_fen: int


def _by_deal(session: Session) -> list[tuple[Deal, list[Payout], list[PayoutOrigin]]]:
    payouts = list(session.scalars(select(Payout).where(Payout.purpose != PayoutPurpose.RETURN).order_by(Payout.id)))
    rows = list(session.scalars(select(PayoutOrigin).order_by(PayoutOrigin.id)))
    deal_ids = {p.deal_id for p in payouts}
    deals = {d.id: d for d in session.scalars(select(Deal).where(Deal.id.in_(deal_ids)))} if deal_ids else {}
    return [
        (
            deals[deal_id],
            [p for p in payouts if p.deal_id == deal_id],
            [r for r in rows if r.deal_id == deal_id],
        )
        for deal_id in sorted(deal_ids)
    ]


def payee_violations(session: Session) -> list[Violation]:
    """Payouts of deals (not failed) whose account is neither the agreement's, an approved amendment's
    (releases) nor an origin's (refunds)."""
    found = []
    for deal, payouts, rows in _by_deal(session):
        allowed = release_accounts(session, deal)
        paid_from = {row.account for row in rows}
        for payout in payouts:
            if payout.status == PayoutStatus.FAILED:
                continue
            if payout.purpose == PayoutPurpose.RELEASE and payout.payee_account not in allowed:
                found.append(Violation(deal.deal_no, "PAYEE_NOT_IN_AGREEMENT", payout.payout_id, payout.amount_fen))
            if payout.purpose == PayoutPurpose.REFUND and payout.payee_account not in paid_from:
                found.append(Violation(deal.deal_no, "PAYEE_NOT_ORIGIN", payout.payout_id, payout.amount_fen))
    return found


def over_refunded_origins(session: Session) -> list[Violation]:
    """Origins that got back (refunds paid or in flight) more than they paid."""
    return [
        Violation(deal.deal_no, "REFUND_ABOVE_ORIGIN", None, origin.refunded_fen - origin.paid_fen)
        for deal, payouts, rows in _by_deal(session)
        for origin in origins.combine(rows, origins.refunds_by_account(payouts))
        if origin.left_fen < 0
    ]


def releases_over_agreement(session: Session, products: ProductRegistry) -> list[Violation]:
    """Deals whose releases (paid or in flight) exceed what their agreement allows."""
    found = []
    for deal, payouts, _ in _by_deal(session):
        released, agreed = _released_fen(payouts), agreed_release_fen(deal, products)
        if released > agreed:
            found.append(Violation(deal.deal_no, "AMOUNT_ABOVE_AGREEMENT", None, released - agreed))
    return found
