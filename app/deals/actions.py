"""The deal actions that workflow definitions name (listed by app.deals.vocabulary; nothing registers here)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from app.db.models import Agreement, Deal, Payout, VirtualAccount
from app.deals.pinning import pinned_city
from app.deals.workflow import DealContext
from app.domain import ledger
from app.domain.ledger import TransferSpec
from app.ledger.repo import LedgerRepository
from app.platform.runtime import Runtime
from app.queue.jobs import enqueue

AgreementSigner = Callable[[Runtime, Deal], Agreement]


def signing(signer: AgreementSigner) -> Callable[[DealContext], None]:
    """The `sign_agreement` action with its signer: the platform's key in production, the sandbox's copies of
    one signed file in a simulation."""

    def sign_agreement_action(ctx: DealContext) -> None:
        ctx.session.add(signer(ctx.rt, ctx.deal))

    return sign_agreement_action


def request_virtual_account(ctx: DealContext) -> None:
    account = VirtualAccount(
        deal_id=ctx.deal.id,
        bank_code=ctx.deal.bank_code,
        request_id=f"VA-{uuid.uuid4().hex}",
        account_name=f"存管-{ctx.deal.deal_no}",
        status="requested",
        designated_payer=pinned_city(ctx.rt, ctx.session, ctx.deal).product(ctx.deal.product).payer.designated,
        requested_at=ctx.rt.clock(),
    )
    ctx.session.add(account)
    ctx.session.flush()
    enqueue(ctx.session, "open_virtual_account", {"virtual_account_id": account.id}, now=ctx.rt.clock())


def record_virtual_account(ctx: DealContext) -> None:
    account = ctx.deal.virtual_account
    assert account is not None, "account_opened for a deal without an account request"
    account.account_no = ctx.payload["account_no"]
    account.status = "opened"
    account.opened_at = ctx.rt.clock()


def open_payout(
    ctx: DealContext,
    amount_fen: int,
    payee_name: str,
    payee_account: str,
    *,
    purpose: str = "release",
    group: str | None = None,
) -> Payout:
    """Hold `amount_fen` out of the deal's custody and ask the bank to pay it; the bank call is a job.

    The hold (a pending transfer custody -> bank clearing) is what makes a second release of the same
    money impossible while the bank works; its result posts or voids it. A payout above the city's approval
    threshold (for its operation: payout or refund) holds the money but waits for other people's approval
    before the bank sees it."""
    operation = "refund" if purpose == "refund" else "payout"
    product = pinned_city(ctx.rt, ctx.session, ctx.deal).product(ctx.deal.product)
    required = product.approvers_required(operation, amount_fen)
    payout = Payout(
        payout_id=f"PO-{ctx.deal.deal_no}-{len(ctx.deal.payouts) + 1}",
        deal_id=ctx.deal.id,
        bank_code=ctx.deal.bank_code,
        amount_fen=amount_fen,
        payee_name=payee_name,
        payee_account=payee_account,
        purpose=purpose,
        release_group=group,
        status="awaiting_approval" if required > 1 else "pending",
        requested_by=ctx.actor,
        approvals_required=required,
        approved_by=[],
        created_at=ctx.rt.clock(),
    )
    ctx.session.add(payout)
    ctx.deal.payouts.append(payout)
    ctx.session.flush()
    LedgerRepository(ctx.session).hold(
        TransferSpec(
            id=hold_id(payout),
            debit_code=ledger.deal_custody(ctx.deal.deal_no).code,
            credit_code=ledger.bank_clearing(payout.bank_code).code,
            amount_fen=payout.amount_fen,
            code="payout",
            deal_id=ctx.deal.id,
        ),
        at=ctx.rt.clock(),
    )
    if payout.status == "pending":
        enqueue(ctx.session, "submit_payout", {"payout_id": payout.payout_id}, now=ctx.rt.clock())
    return payout


def request_payout(ctx: DealContext) -> None:
    """Resale and government escrow: the custody amount to the seller."""
    seller_name, seller_account = ctx.deal.seller_name, ctx.deal.seller_bank_account
    assert seller_name and seller_account, "escrow deals are created with the seller's account"
    open_payout(ctx, ctx.deal.custody_amount_fen, seller_name, seller_account)


def hold_id(payout: Payout) -> str:
    return f"payout:{payout.payout_id}"


def settle_payout(ctx: DealContext) -> None:
    """The bank paid the seller: the hold becomes a posted movement out of custody."""
    payout: Payout = ctx.payload["payout"]
    LedgerRepository(ctx.session).post_pending(f"{hold_id(payout)}:posted", hold_id(payout), at=ctx.rt.clock())


def release_payout_hold(ctx: DealContext) -> None:
    """The bank did not pay: the money is free in custody again, for a retry or a refund."""
    payout: Payout = ctx.payload["payout"]
    LedgerRepository(ctx.session).void_pending(f"{hold_id(payout)}:void", hold_id(payout), at=ctx.rt.clock())
