"""The bank's result for a payout, whoever told us (its `payout_result` callback, a query after an unclear
submission, the watchdog, reconciliation's 补单): the one place a payout becomes final.

The hold is posted (paid) or voided (not paid) at once, whatever the deal's workflow does with the news.
Then: a return settles its suspense item; a payout of a release group tells the workflow once the whole
group is final (`payout_succeeded`/`refund_succeeded` when all were paid, `…_failed` once all are final
and one failed); a payout on its own (resale, government escrow) tells it at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Payout
from app.deals.workflow import DealContext, fire_or_note, note
from app.payouts import holds, trail
from app.payouts.status import PayoutPurpose, PayoutStatus, is_final
from app.platform.runtime import Runtime


def apply_result(
    rt: Runtime,
    session: Session,
    payout: Payout,
    status: str,
    bank_reference: str,
    reason: str | None,
    actor: str,
    marker: str | None = None,
) -> str:
    """Record the bank's final answer (`succeeded` or `failed`) for a payout locked by the caller; returns
    the outcome (`already_final` when an answer was recorded before: nothing changes)."""
    if is_final(payout.status):
        return "already_final"
    before = trail.payout_state(payout)
    payout.status = PayoutStatus(status)
    assert payout.status.final, f"not a final result: {status}"
    payout.bank_reference = bank_reference
    payout.failure_reason = reason
    payout.updated_at = rt.clock()
    holds.resolve(session, payout, rt.clock())
    trail.record(
        session, payout, "result", actor, rt.clock(), before=before, detail={"reason": reason, "marker": marker}
    )
    if payout.purpose == PayoutPurpose.RETURN:
        return _return_final(rt, payout)
    detail: dict[str, Any] = {"payout_id": payout.payout_id, "amount_fen": payout.amount_fen}
    if payout.status == PayoutStatus.FAILED:
        detail["failure_reason"] = reason or ""
    if marker:
        detail["marker"] = marker
    ctx = DealContext(rt, session, payout.deal, actor, {"payout": payout})
    if payout.release_group is None:  # `payout_succeeded` or `payout_failed`
        return fire_or_note(ctx, f"payout_{payout.status.value}", detail)
    return _group_final(ctx, session, payout, detail)


def _group_final(ctx: DealContext, session: Session, payout: Payout, detail: dict[str, Any]) -> str:
    """Tell the workflow the group's outcome once every payout of it is final."""
    group = list(
        session.scalars(select(Payout).where(Payout.release_group == payout.release_group).order_by(Payout.id))
    )
    if not all(is_final(p.status) for p in group):
        note(ctx, "payout_partial", {"label": "同批款项尚未全部完成", **detail})
        return "waiting_for_group"
    paid = all(p.status == PayoutStatus.SUCCEEDED for p in group)
    outcome = PayoutStatus.SUCCEEDED if paid else PayoutStatus.FAILED
    return fire_or_note(ctx, _answer(ctx, group, outcome), detail)  # e.g. `refund_succeeded`, `payout_failed`


def _answer(ctx: DealContext, group: list[Payout], outcome: PayoutStatus) -> str:
    """The group's outcome as the event its deal waits for. A deal waiting for a group waits either for a
    payout's answer (`payout_*`) or a refund's (`refund_*`), as the action that opened the group declared (the
    workflows' money check holds every waiting state to it): a deposit settlement that turned out to be the
    refund alone is still answered as the settlement the workflow waits for. A deal waiting for neither (it
    ended: an overpayment sent back on closing) hears what the group was: `refund_*` when it held only
    refunds."""
    waits = ctx.rt.workflow(ctx.deal.workflow_id, ctx.deal.workflow_version).events_from(ctx.deal.state)
    kinds = [kind for kind in ("payout", "refund") if f"{kind}_{outcome.value}" in waits]
    if len(kinds) != 1:
        kinds = ["refund" if all(p.purpose == PayoutPurpose.REFUND for p in group) else "payout"]
    return f"{kinds[0]}_{outcome.value}"


def _return_final(rt: Runtime, payout: Payout) -> str:
    """A return's result on its suspense item: returned, or back in the review queue with the reason."""
    item = payout.suspense_item
    assert item is not None, "a return payout always names its suspense item"
    if payout.status == PayoutStatus.SUCCEEDED:
        item.status, item.resolved_at = "returned", rt.clock()
        return "returned"
    item.status = "open"
    item.resolution = f"退回失败：{payout.failure_reason or '银行未说明原因'}"
    return "return_failed"
