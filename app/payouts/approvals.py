"""Payouts above the city's threshold wait for approval by people other than whoever asked for them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Deal, DealEvent, Payout
from app.deals.service import Actor
from app.deals.workflow import timeline_row
from app.payouts import submission, trail
from app.payouts.status import PayoutStatus
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime

APPROVER_ROLES = ("ops", "finance")


@dataclass(frozen=True)
class ApprovalOutcome:
    payout_id: str
    approvals: int
    required_others: int
    released: bool  # True when this approval sent the payout to the bank


def refusal(actor: Actor, payout: Payout, deal: Deal) -> ValidationError | None:
    """Why `actor` may not approve `payout` (of `deal`) now, or None (the deal page asks the same question)."""
    if actor.role not in APPROVER_ROLES:
        return ValidationError("只有运营或财务可以审批付款", code="ROLE_NOT_ALLOWED")
    if payout.status != PayoutStatus.AWAITING_APPROVAL:
        return ValidationError(
            "该付款无需审批或已审批", code="NOT_AWAITING_APPROVAL", details={"status": payout.status}
        )
    if deal.frozen_at is not None:
        return ValidationError(
            "存管单已冻结，解冻前不能审批付款", code="DEAL_FROZEN", details={"payout_id": payout.payout_id}
        )
    if actor.label == payout.requested_by or actor.label in payout.approved_by:
        return ValidationError(
            "发起人不能审批自己的付款，同一人也不能重复审批", code="SAME_PERSON", details={"actor": actor.username}
        )
    return None


def approve(rt: Runtime, actor: Actor, payout_id: str) -> ApprovalOutcome:
    """Record `actor`'s approval; the last one needed queues the bank submission."""
    if actor.role not in APPROVER_ROLES:
        raise ValidationError("只有运营或财务可以审批付款", code="ROLE_NOT_ALLOWED")
    with rt.db.uow() as uow:
        payout = uow.session.scalar(select(Payout).where(Payout.payout_id == payout_id).with_for_update())
        if payout is None:
            raise NotFound("付款不存在", code="PAYOUT_NOT_FOUND", details={"payout_id": payout_id})
        refused = refusal(actor, payout, payout.deal)
        if refused is not None:
            raise refused
        before = trail.payout_state(payout)
        payout.approved_by = [*payout.approved_by, actor.label]
        required_others = payout.approvals_needed
        released = len(payout.approved_by) >= required_others
        if released:
            submission.release_approved(uow.session, payout, rt.clock())
        deal = payout.deal
        detail = {
            "label": "付款审批通过" + ("，已提交银行" if released else ""),
            "payout_id": payout.payout_id,
            "amount_fen": payout.amount_fen,
            "approvals": f"{len(payout.approved_by)}/{required_others}",
        }
        uow.session.add(
            DealEvent(
                **timeline_row(deal.id, "payout_approved", deal.state, deal.state, actor.label, detail, rt.clock())
            )
        )
        trail.record(
            uow.session, payout, "approve", actor.label, rt.clock(), before=before, detail={"released": released}
        )
        uow.commit()
        return ApprovalOutcome(payout.payout_id, len(payout.approved_by), required_others, released)


def four_eyes_violations(session: Session) -> list[str]:
    """Payouts whose approvals broke four eyes (for the simulations' invariants): approved by whoever asked for
    it, approved twice by one person, or past approval with fewer approvers than it needed."""
    found: list[str] = []
    for payout in session.scalars(select(Payout).where(Payout.approvals_required > 1)):
        approvers = list(payout.approved_by or [])
        if payout.requested_by is not None and payout.requested_by in approvers:
            found.append(f"{payout.payout_id}: approved by its requester {payout.requested_by}")
        if len(set(approvers)) != len(approvers):
            found.append(f"{payout.payout_id}: one person approved it twice ({approvers})")
        needed = payout.approvals_needed
        if payout.status != PayoutStatus.AWAITING_APPROVAL and len(set(approvers)) < needed:
            found.append(f"{payout.payout_id}: {payout.status} with {len(set(approvers))} of {needed} approvals")
    return found
