"""Freeze and unfreeze a deal (a judicial or risk hold): while frozen no money leaves it.

A freeze does not move the deal in its workflow; it is a flag beside the state. Payouts may still be
asked for and approved-in-waiting, but `submit_payout` defers every payout of a frozen deal (the bank
never sees it) and approval is refused. Unfreezing makes the deferred submissions due at once (the payouts
package knows them: `app/payouts/submission.py`).
Both are ops actions with a required reason, audited (before/after) and shown on the deal's timeline.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.audit import log as audit
from app.db.models import Deal, DealEvent
from app.deals.service import Actor
from app.deals.workflow import has_ended, timeline_row
from app.payouts import submission
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime

FREEZE_ROLES = ("ops",)
REASON_MAX = 256


def _state(deal: Deal) -> dict[str, Any]:
    return {
        "frozen": deal.frozen_at is not None,
        "frozen_at": deal.frozen_at.isoformat() if deal.frozen_at else None,
        "frozen_by": deal.frozen_by,
        "frozen_reason": deal.frozen_reason,
    }


def _checked(actor: Actor, reason: str) -> str:
    if actor.role not in FREEZE_ROLES:
        raise ValidationError("只有运营可以冻结或解冻存管单", code="ROLE_NOT_ALLOWED")
    reason = reason.strip()
    if not reason:
        raise ValidationError("请填写操作原因", code="REASON_REQUIRED")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"操作原因不能超过 {REASON_MAX} 字", code="REASON_TOO_LONG")
    return reason


def _load(session: Session, deal_id: int) -> Deal:
    deal = session.get(Deal, deal_id, with_for_update=True)
    if deal is None:
        raise NotFound("存管单不存在", details={"deal_id": deal_id})
    return deal


def _record(
    session: Session, deal: Deal, actor: Actor, action: str, before: dict[str, Any], reason: str, now: datetime
) -> None:
    label = "冻结存管单" if action == "freeze" else "解冻存管单"
    detail = {"label": label, "reason": reason}
    session.add(DealEvent(**timeline_row(deal.id, action, deal.state, deal.state, actor.label, detail, now)))
    audit.append(
        session,
        at=now,
        actor=actor.label,
        action=f"deal.{action}",
        subject=f"deal:{deal.deal_no}",
        before=before,
        after=_state(deal),
        detail={"reason": reason},
    )


def freeze(rt: Runtime, actor: Actor, deal_id: int, reason: str) -> None:
    """Freeze the deal: from now on no payout of it is sent to the bank. Refused if already frozen or if the
    deal has ended (a final state of its workflow)."""
    reason = _checked(actor, reason)
    with rt.db.uow() as uow:
        deal = _load(uow.session, deal_id)
        if deal.frozen_at is not None:
            raise ValidationError("存管单已处于冻结状态", code="ALREADY_FROZEN", details={"deal_no": deal.deal_no})
        if has_ended(rt, deal):
            raise ValidationError("存管单已结束，无需冻结", code="DEAL_FINISHED", details={"state": deal.state})
        before, now = _state(deal), rt.clock()
        deal.frozen_at, deal.frozen_by, deal.frozen_reason = now, actor.label, reason
        _record(uow.session, deal, actor, "freeze", before, reason, now)
        uow.commit()


def unfreeze(rt: Runtime, actor: Actor, deal_id: int, reason: str) -> int:
    """Lift the freeze; payout submissions deferred meanwhile become due now. Returns how many woke up."""
    reason = _checked(actor, reason)
    with rt.db.uow() as uow:
        deal = _load(uow.session, deal_id)
        if deal.frozen_at is None:
            raise ValidationError("存管单未冻结", code="NOT_FROZEN", details={"deal_no": deal.deal_no})
        before, now = _state(deal), rt.clock()
        deal.frozen_at = deal.frozen_by = deal.frozen_reason = None
        woken = submission.wake_submissions(uow.session, deal.id, now)
        _record(uow.session, deal, actor, "unfreeze", before, reason, now)
        uow.commit()
        return woken
