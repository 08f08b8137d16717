"""The named guards and actions that workflow definitions compose (registered on import)."""

from __future__ import annotations

import uuid

from app.agreements.service import sign_agreement
from app.db.models import Payout, VirtualAccount
from app.deals.pinning import pinned_city
from app.deals.workflow import DealContext, registry
from app.domain import ledger
from app.ledger.repo import LedgerRepository
from app.payouts import holds, lifecycle
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


@registry.action("record_virtual_account")
def record_virtual_account(ctx: DealContext) -> None:
    account = ctx.deal.virtual_account
    assert account is not None, "account_opened for a deal without an account request"
    account.account_no = ctx.payload["account_no"]
    account.status = "opened"
    account.opened_at = ctx.rt.clock()


@registry.action("request_payout")
def request_payout(ctx: DealContext) -> None:
    """Resale and government escrow: the custody amount to the seller."""
    seller_name, seller_account = ctx.deal.seller_name, ctx.deal.seller_bank_account
    assert seller_name and seller_account, "escrow deals are created with the seller's account"
    lifecycle.open_deal_payout(ctx, lifecycle.PayoutOrder(ctx.deal.custody_amount_fen, seller_name, seller_account))


@registry.action("settle_payout")
def settle_payout(ctx: DealContext) -> None:
    """The bank paid the seller: the hold is a posted movement out of custody (posted by `payouts.results` when
    the result came; this repeat is a no-op, kept for the workflows that name it)."""
    payout: Payout = ctx.payload["payout"]
    holds.settle(ctx.session, payout, ctx.rt.clock())


@registry.action("release_payout_hold")
def release_payout_hold(ctx: DealContext) -> None:
    """The bank did not pay: the money is free in custody again, for a retry or a refund (voided by
    `payouts.results` when the result came; this repeat is a no-op, kept for the workflows that name it)."""
    payout: Payout = ctx.payload["payout"]
    holds.release(ctx.session, payout, ctx.rt.clock())
