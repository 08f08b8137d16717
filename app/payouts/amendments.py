"""Payee amendments: an account for a deal's receiving role other than the one the signed agreement names.
One person proposes it with a reason; it takes effect only once another person approves it; both steps are
audited (actor, deal, account masked, before/after). Releases then go to the newest approved account."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.db.models import Deal
from app.db.payee_models import PayeeAmendment
from app.deals.service import BANK_ACCOUNT, Actor
from app.definitions.products import pinned_variant
from app.domain.pii_mask import mask_card, mask_name, mask_or_empty
from app.platform.errors import CunguanError, NotFound, ValidationError
from app.platform.runtime import Runtime

PROPOSER_ROLES = ("ops", "agent")
APPROVER_ROLES = ("ops", "finance")


class SelfApproval(CunguanError):
    code = "AMENDMENT_SELF_APPROVAL"
    http_status = 403


def approved(session: Session, deal_id: int) -> list[PayeeAmendment]:
    """The deal's approved amendments, oldest first."""
    query = select(PayeeAmendment).where(PayeeAmendment.deal_id == deal_id, PayeeAmendment.status == "approved")
    return list(session.scalars(query.order_by(PayeeAmendment.id)))


def pending(session: Session, deal_id: int | None = None) -> list[PayeeAmendment]:
    """Amendments waiting for a second person (of one deal, or all)."""
    query = select(PayeeAmendment).where(PayeeAmendment.status == "proposed")
    if deal_id is not None:
        query = query.where(PayeeAmendment.deal_id == deal_id)
    return list(session.scalars(query.order_by(PayeeAmendment.id)))


def named_payee(session: Session, deal: Deal) -> tuple[str | None, str | None]:
    """(name, account) a release goes to: the newest approved amendment's, else the agreement's."""
    latest = approved(session, deal.id)
    if latest:
        return latest[-1].payee_name, latest[-1].account
    return deal.seller_name, deal.seller_bank_account


def propose(rt: Runtime, actor: Actor, deal_id: int, payee_name: str, account: str, reason: str) -> int:
    """Record a proposed receiving account for the deal; it changes nothing until someone else approves it."""
    if actor.role not in PROPOSER_ROLES:
        raise ValidationError("当前角色无权提出收款账户变更", code="ROLE_NOT_ALLOWED")
    payee_name, account, reason = payee_name.strip(), account.strip(), reason.strip()
    if not reason:
        raise ValidationError("请填写变更原因", code="REASON_REQUIRED")
    if len(payee_name) < 2 or not BANK_ACCOUNT.fullmatch(account):
        raise ValidationError("请填写收款人户名和收款账号（8–32 位数字）", code="PAYEE_INVALID")
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, deal_id)
        if deal is None or (actor.role == "agent" and deal.created_by_id != actor.user_id):
            raise NotFound("存管单不存在或无权查看", details={"deal_id": deal_id})
        role = pinned_variant(rt.definitions, rt.products, deal).payee_role  # the role its agreement names
        amendment = PayeeAmendment(
            deal_id=deal.id,
            role=role,
            payee_name=payee_name,
            account=account,
            reason=reason,
            status="proposed",
            proposed_by=actor.label,
            proposed_at=rt.clock(),
        )
        uow.session.add(amendment)
        uow.session.flush()
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=actor.label,
            action="payee_amendment.propose",
            subject=f"deal:{deal.deal_no}",
            before={"account": mask_or_empty("card", deal.seller_bank_account)},
            after={
                "role": role,
                "payee_name": mask_name(payee_name),
                "account": mask_card(account),
                "status": "proposed",
            },
            detail={"amendment_id": amendment.id, "reason": reason},
        )
        uow.commit()
        return amendment.id


def approve(rt: Runtime, actor: Actor, amendment_id: int) -> int:
    """A second person approves: from now on the deal's releases go to the amendment's account. Returns
    the deal's id."""
    if actor.role not in APPROVER_ROLES:
        raise ValidationError("只有运营或财务可以审批收款账户变更", code="ROLE_NOT_ALLOWED")
    with rt.db.uow() as uow:
        amendment = uow.session.get(PayeeAmendment, amendment_id, with_for_update=True)
        if amendment is None:
            raise NotFound("收款账户变更不存在", code="AMENDMENT_NOT_FOUND", details={"id": amendment_id})
        if amendment.status != "proposed":
            raise ValidationError("该变更已审批", code="AMENDMENT_NOT_PROPOSED", details={"id": amendment_id})
        if amendment.proposed_by == actor.label:
            raise SelfApproval("不能审批自己提出的收款账户变更，须由另一人审批", details={"id": amendment_id})
        deal = uow.session.get(Deal, amendment.deal_id)
        assert deal is not None, "an amendment always belongs to a deal"
        _, before = named_payee(uow.session, deal)
        amendment.status, amendment.approved_by, amendment.approved_at = "approved", actor.label, rt.clock()
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=actor.label,
            action="payee_amendment.approve",
            subject=f"deal:{deal.deal_no}",
            before={"account": mask_or_empty("card", before)},
            after={"role": amendment.role, "account": mask_card(amendment.account), "status": "approved"},
            detail={"amendment_id": amendment.id, "proposed_by": amendment.proposed_by},
        )
        uow.commit()
        return deal.id
