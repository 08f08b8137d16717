"""The named guards and actions that workflow definitions compose (registered on import)."""

from __future__ import annotations

from app.agreements.service import sign_agreement
from app.db.models import Payout, VirtualAccount
from app.deals.account_request import account_opening, virtual_account_request
from app.deals.pinning import pinned_city
from app.deals.workflow import DealContext, registry
from app.domain import ledger
from app.domain.ledger import TransferSpec
from app.ledger.repo import LedgerRepository
from app.queue.jobs import enqueue


@registry.guard("fully_funded")
def fully_funded(ctx: DealContext) -> bool:
    held_fen = LedgerRepository(ctx.session).balance(ledger.deal_custody(ctx.deal.deal_no).code)
    return held_fen >= ctx.deal.custody_amount_fen


@registry.action("sign_agreement")
def sign_agreement_action(ctx: DealContext) -> None:
    ctx.session.add(sign_agreement(ctx.rt, ctx.deal))


@registry.action("request_virtual_account")
def request_virtual_account(ctx: DealContext) -> None:
    now = ctx.rt.clock()
    designated = pinned_city(ctx.rt, ctx.session, ctx.deal).product(ctx.deal.product).payer.designated
    account = VirtualAccount(
        **virtual_account_request(ctx.deal.id, ctx.deal.deal_no, ctx.deal.bank_code, designated, now)
    )
    ctx.session.add(account)
    ctx.session.flush()
    enqueue(ctx.session, *account_opening(account.id), now=now)


@registry.action("record_virtual_account")
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


@registry.action("request_payout")
def request_payout(ctx: DealContext) -> None:
    """Resale and government escrow: the custody amount to the seller."""
    seller_name, seller_account = ctx.deal.seller_name, ctx.deal.seller_bank_account
    assert seller_name and seller_account, "escrow deals are created with the seller's account"
    open_payout(ctx, ctx.deal.custody_amount_fen, seller_name, seller_account)


def hold_id(payout: Payout) -> str:
    return f"payout:{payout.payout_id}"


@registry.action("settle_payout")
def settle_payout(ctx: DealContext) -> None:
    """The bank paid the seller: the hold becomes a posted movement out of custody."""
    payout: Payout = ctx.payload["payout"]
    LedgerRepository(ctx.session).post_pending(f"{hold_id(payout)}:posted", hold_id(payout), at=ctx.rt.clock())


@registry.action("release_payout_hold")
def release_payout_hold(ctx: DealContext) -> None:
    """The bank did not pay: the money is free in custody again, for a retry or a refund."""
    payout: Payout = ctx.payload["payout"]
    LedgerRepository(ctx.session).void_pending(f"{hold_id(payout)}:void", hold_id(payout), at=ctx.rt.clock())
