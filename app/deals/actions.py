"""The deal actions that workflow definitions name (listed by app.deals.vocabulary; nothing registers here)."""

from __future__ import annotations

from collections.abc import Callable

from app.agreements.countersign import countersign_request
from app.db.models import Agreement, Deal, Payout, VirtualAccount
from app.deals.account_request import account_opening, virtual_account_request
from app.deals.pinning import pinned_city
from app.deals.workflow import DealContext
from app.payouts import amendments, holds, lifecycle
from app.platform.runtime import Runtime
from app.queue.jobs import enqueue
from app.signing.service import open_requests

AgreementSigner = Callable[[Runtime, Deal], Agreement]


def signing(signer: AgreementSigner) -> Callable[[DealContext], None]:
    """The `sign_agreement` action with its signer: the platform's key in production, the sandbox's copies of
    one signed file in a simulation."""

    def sign_agreement_action(ctx: DealContext) -> None:
        ctx.session.add(signer(ctx.rt, ctx.deal))
        if ctx.rt.party_signing:  # the parties sign on their phones; the last one's signature queues the bank
            ctx.session.flush()
            open_requests(ctx.rt, ctx.session, ctx.deal)
            return
        # then the bank signs
        enqueue(ctx.session, *countersign_request(ctx.deal.id), now=ctx.rt.clock(), bank_code=ctx.deal.bank_code)

    return sign_agreement_action


def request_virtual_account(ctx: DealContext) -> None:
    now = ctx.rt.clock()
    designated = pinned_city(ctx.rt, ctx.session, ctx.deal).product(ctx.deal.product).payer.designated
    account = VirtualAccount(
        **virtual_account_request(ctx.deal.id, ctx.deal.deal_no, ctx.deal.bank_code, designated, now)
    )
    ctx.session.add(account)
    ctx.session.flush()
    enqueue(ctx.session, *account_opening(account.id), now=now, bank_code=ctx.deal.bank_code)


def record_virtual_account(ctx: DealContext) -> None:
    account = ctx.deal.virtual_account
    assert account is not None, "account_opened for a deal without an account request"
    account.account_no = ctx.payload["account_no"]
    account.status = "opened"
    account.opened_at = ctx.rt.clock()


def request_payout(ctx: DealContext) -> None:
    """Resale and government escrow: the custody amount to the seller's account the agreement names (or an
    approved amendment's)."""
    seller_name, seller_account = amendments.named_payee(ctx.session, ctx.deal)
    assert seller_name and seller_account, "escrow deals are created with the seller's account"
    lifecycle.open_deal_payout(ctx, lifecycle.PayoutOrder(ctx.deal.custody_amount_fen, seller_name, seller_account))


def settle_payout(ctx: DealContext) -> None:
    """The bank paid the seller: the hold is a posted movement out of custody (posted by `payouts.results` when
    the result came; this repeat is a no-op, kept for the workflows that name it)."""
    payout: Payout = ctx.payload["payout"]
    holds.settle(ctx.session, payout, ctx.rt.clock())


def release_payout_hold(ctx: DealContext) -> None:
    """The bank did not pay: the money is free in custody again, for a retry or a refund (voided by
    `payouts.results` when the result came; this repeat is a no-op, kept for the workflows that name it)."""
    payout: Payout = ctx.payload["payout"]
    holds.release(ctx.session, payout, ctx.rt.clock())
