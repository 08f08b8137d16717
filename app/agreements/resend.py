"""重新发起签署 (re-send for signature): ops re-issue the signing of a deal's agreement that is not fully signed.

The rule:
- An agreement is fully signed when it carries the platform's seal (applied when the agent confirms) and
  the countersignature of the deal's bank. Re-sending is for a deal whose platform-signed agreement still
  lacks a valid bank countersignature (the bank's signing failed or was never done).
- The signed text is fixed once the platform has signed: re-sending never re-renders the agreement, even if
  the template or the city's draft config changed since. The bank signs the stored PDF as an incremental
  update, so the platform's signature stays verifiable.
- Before the platform has signed there is nothing to re-send: the agent's own confirmation is the signing.
  A fully signed agreement is refused too (nothing is signed twice).
- Ops only, a reason is required, and the action is audited (PDF SM3 before and after) and put on the
  deal's timeline in the same transaction.

The bank's seal key is the bank's own: re-sending asks the bank again over the protocol, as a new worker job
(app.agreements.countersign); the bank's signature is added when it answers.
"""

from __future__ import annotations

from sqlalchemy import select

from app.agreements.countersign import bank_has_signed, countersign_request
from app.audit import log as audit
from app.db.models import Agreement, Deal, DealEvent
from app.deals.service import Actor
from app.deals.workflow import has_ended, timeline_row
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime
from app.queue.jobs import enqueue
from app.signing.links import parties_pending

RESEND_ROLES = ("ops",)
REASON_MAX = 256


def resend(rt: Runtime, actor: Actor, deal_id: int, reason: str) -> int:
    """Ask the deal's bank again to sign its platform-signed agreement (a new worker job); returns the job's id."""
    if actor.role not in RESEND_ROLES:
        raise ValidationError("只有运营可以重新发起签署", code="ROLE_NOT_ALLOWED")
    reason = reason.strip()
    if not reason:
        raise ValidationError("请填写操作原因", code="REASON_REQUIRED")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"操作原因不能超过 {REASON_MAX} 字", code="REASON_TOO_LONG")
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, deal_id, with_for_update=True)
        if deal is None:
            raise NotFound("存管单不存在", details={"deal_id": deal_id})
        if has_ended(rt, deal):
            raise ValidationError("存管单已结束，不能重新发起签署", code="DEAL_FINISHED", details={"state": deal.state})
        agreement = uow.session.scalar(select(Agreement).where(Agreement.deal_id == deal.id))
        if agreement is None:
            raise ValidationError("协议尚未由平台签署，请经纪人确认协议后再发起签署", code="AGREEMENT_NOT_SIGNED")
        if bank_has_signed(rt, deal.bank_code, agreement.pdf):
            raise ValidationError("协议已完成全部签署，无需重新发起", code="ALREADY_SIGNED")
        if parties_pending(uow.session, deal.id):  # the bank signs after the parties (app/signing/)
            raise ValidationError("当事人尚未全部签署，银行将在双方签署后签章", code="PARTIES_NOT_SIGNED")
        now = rt.clock()
        job = enqueue(uow.session, *countersign_request(deal.id), now=now, bank_code=deal.bank_code)
        detail = {"label": "重新发起签署，已请银行签章", "reason": reason}
        event = timeline_row(deal.id, "resend_signature", deal.state, deal.state, actor.label, detail, now)
        uow.session.add(DealEvent(**event))
        audit.append(
            uow.session,
            at=now,
            actor=actor.label,
            action="deal.resend_signature",
            subject=f"deal:{deal.deal_no}",
            before={"pdf_sm3": agreement.pdf_sm3},
            after={"job_id": job.id},
            detail={"reason": reason, "bank": deal.bank_code},
        )
        uow.commit()
        return job.id
