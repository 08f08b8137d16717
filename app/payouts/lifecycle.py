"""Creating payouts: the one constructor of `Payout` rows, for a deal (release or refund, alone or as a
release group, and the retry of a group's failed ones) and for a suspense item (its return by original
route). Creating one holds its money (`holds`) and queues its bank call (`submission`) or leaves it for
approval; the bank's result is applied by `results`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.db.models import Deal, Payout, SuspenseItem
from app.deals.pinning import pinned_city
from app.deals.workflow import DealContext
from app.fees import charges
from app.payouts import amendments, holds, payees, submission, trail
from app.payouts.status import PayoutPurpose, PayoutStatus
from app.platform.errors import ValidationError, WorkflowError
from app.platform.runtime import Runtime


@dataclass(frozen=True)
class PayoutOrder:
    """One payout a deal's action asks for: how much, to whom, and why."""

    amount_fen: int
    payee_name: str
    payee_account: str
    purpose: PayoutPurpose = PayoutPurpose.RELEASE


def _create(
    session: Session,
    deal: Deal | None,
    payout_id: str,
    order: PayoutOrder,
    now: datetime,
    *,
    group: str | None = None,
    requested_by: str | None = None,
    approvals_required: int = 1,
    suspense_item: SuspenseItem | None = None,
    fees: dict[str, int] | None = None,
) -> Payout:
    """The row, its hold, and its bank call queued (or left for approval when more than one person must
    agree). Every payout is made here; only a suspense item's return may have no deal. A release's `fees` come
    off what the payee gets (`order.amount_fen` is the gross) and are held with it."""
    if suspense_item is not None:
        bank_code = suspense_item.bank_code
    else:
        assert deal is not None, "a deal's payout names its deal"
        bank_code = deal.bank_code
    payout = Payout(
        payout_id=payout_id,
        deal=deal,
        bank_code=bank_code,
        amount_fen=order.amount_fen - sum((fees or {}).values()),
        fees=fees or {},
        payee_name=order.payee_name,
        payee_account=order.payee_account,
        purpose=order.purpose,
        release_group=group,
        suspense_item_id=suspense_item.id if suspense_item is not None else None,
        status=PayoutStatus.AWAITING_APPROVAL if approvals_required > 1 else PayoutStatus.PENDING,
        requested_by=requested_by,
        approvals_required=approvals_required,
        approved_by=[],
        created_at=now,
    )
    session.add(payout)
    session.flush()
    holds.hold(session, payout, deal.deal_no if deal is not None else None, now)
    if payout.status == PayoutStatus.PENDING:
        submission.queue_submission(session, payout, now)
    trail.record(session, payout, "open", requested_by, now, detail={"release_group": group})
    return payout


def open_deal_payout(ctx: DealContext, order: PayoutOrder, *, group: str | None = None) -> Payout:
    """Hold `order.amount_fen` out of the deal's custody and ask the bank to pay it; the bank call is a job.

    The hold (custody -> bank clearing) is what makes a second release of the same money impossible while
    the bank works. A payout above the city's approval threshold (for its operation: payout or refund) holds
    the money but waits for other people's approval before the bank sees it. The payee and amount rules
    (`payees.check`) refuse, before anything exists, a payee or amount the agreement does not allow. A release
    pays the city's fees charged on release out of `order.amount_fen` (`app.fees`)."""
    assert order.purpose in (PayoutPurpose.RELEASE, PayoutPurpose.REFUND), order.purpose
    deal = ctx.deal
    payees.check(ctx.session, deal, ctx.rt.products, order.purpose, order.payee_account, order.amount_fen)
    operation = "refund" if order.purpose == PayoutPurpose.REFUND else "payout"
    required = (
        pinned_city(ctx.rt, ctx.session, deal).product(deal.product).approvers_required(operation, order.amount_fen)
    )
    payout_id = f"PO-{deal.deal_no}-{len(deal.payouts) + 1}"
    fees = charges.release_fees(ctx.rt, ctx.session, deal, order.amount_fen) if operation == "payout" else {}
    return _create(
        ctx.session,
        deal,
        payout_id,
        order,
        ctx.rt.clock(),
        group=group,
        requested_by=ctx.actor,
        approvals_required=required,
        fees=fees,
    )


def open_group(ctx: DealContext, orders: list[PayoutOrder]) -> str:
    """The payouts one action asks for together, as a new release group: the workflow hears once all of them
    are final (`results`). Returns the group's name."""
    group = _next_group(ctx.deal)
    for order in orders:
        open_deal_payout(ctx, order, group=group)
    return group


def retry_failed(ctx: DealContext) -> str:
    """Re-send the payouts of the deal's last group that failed, as a new group; the paid ones stay paid. A
    release goes to the account named now (an approved amendment may have replaced the failed one)."""
    failed = _failed_of_last_group(ctx.deal)
    if not failed:
        raise WorkflowError("没有可重新划付的失败款项", code="NOTHING_TO_RETRY")
    return open_group(ctx, [_again(ctx, payout) for payout in failed])


def _again(ctx: DealContext, payout: Payout) -> PayoutOrder:
    gross = payout.amount_fen + payout.fee_fen  # a release's fees are worked out again (the same share)
    if payout.purpose == PayoutPurpose.RELEASE:
        name, account = amendments.named_payee(ctx.session, ctx.deal)
        if name and account:
            return PayoutOrder(gross, name, account, PayoutPurpose.RELEASE)
    return PayoutOrder(gross, payout.payee_name, payout.payee_account, PayoutPurpose(payout.purpose))


def _next_group(deal: Deal) -> str:
    groups = {payout.release_group for payout in deal.payouts if payout.release_group}
    return f"G-{deal.deal_no}-{len(groups) + 1}"


def _failed_of_last_group(deal: Deal) -> list[Payout]:
    grouped = [payout for payout in deal.payouts if payout.release_group]
    if not grouped:
        return []
    last = max(grouped, key=lambda payout: payout.id).release_group
    return [p for p in grouped if p.release_group == last and p.status == PayoutStatus.FAILED]


def open_return(rt: Runtime, session: Session, item: SuspenseItem, actor: str, reason: str) -> str:
    """Hold a suspense credit and pay it back to the account it came from (never anywhere else); the item is
    `returning` until the bank's result. Returns need no approval: they go back by original route only.
    A credit to an account we do not know has no deal: it goes back to its sender all the same, paid from
    the account it arrived in. Returns the payout id."""
    if not item.payer_account or not item.payer_name:
        raise ValidationError("无法原路退回：缺少来款账户", code="NO_ORIGINAL_ROUTE", details={"item": item.id})
    order = PayoutOrder(item.amount_fen, item.payer_name, item.payer_account, PayoutPurpose.RETURN)
    payout = _create(session, item.deal, f"RT-{uuid.uuid4().hex[:20]}", order, rt.clock(), suspense_item=item)
    item.status, item.resolution, item.resolved_by = "returning", reason, actor
    return payout.payout_id
