"""A deal's live status, small enough to poll every few seconds: its state, its timeline's length (the page
reloads when it grew) and what the deal is waiting for right now, in words (开户、签章、付款中…)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.agreements.countersign import COUNTERSIGN_JOB
from app.db.models import DealEvent, Job, Payout
from app.deals.service import Actor, load_for
from app.deals.workflow import has_ended
from app.payouts.status import PayoutStatus
from app.platform.runtime import Runtime

WAITING = ("pending", "running")


def progress_texts(account_requested: bool, account_no: str | None, signing: bool, payouts: list[str]) -> list[str]:
    """What is under way, from the facts: the bank opening the account, countersigning, payouts in flight."""
    texts = []
    if account_requested and not account_no:
        texts.append("正在向银行申请开立存管虚户，银行回执到达后自动显示账号…")
    if signing:
        texts.append("平台已签署，正在等待银行签章…")
    if PayoutStatus.AWAITING_APPROVAL in payouts:
        texts.append("付款待审批：须由发起人以外的运营或财务审批后提交银行")
    if PayoutStatus.PENDING in payouts:
        texts.append("付款正在提交银行…")
    if PayoutStatus.SUBMITTED in payouts:
        texts.append("银行正在处理付款，等待银行结果…")
    return texts


def deal_status(rt: Runtime, actor: Actor, deal_id: int) -> dict[str, Any]:
    with rt.db.uow() as uow:
        session = uow.session
        deal = load_for(session, deal_id, actor)
        events = session.scalar(select(func.count()).select_from(DealEvent).where(DealEvent.deal_id == deal.id))
        signing = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(
                Job.kind == COUNTERSIGN_JOB,
                Job.status.in_(WAITING),
                Job.payload["deal_id"].as_integer() == deal.id,
            )
        )
        payouts = list(session.scalars(select(Payout.status).where(Payout.deal_id == deal.id)))
        account = deal.virtual_account
        account_no = account.account_no if account is not None else None
        label = rt.workflow(deal.workflow_id, deal.workflow_version).label(deal.state)
        progress = progress_texts(account is not None, account_no, bool(signing), payouts)
        return {
            "state": deal.state,
            "state_label": label,
            "events": events or 0,
            "account_no": account_no,
            "progress": progress,
            "settled": has_ended(rt, deal) and not progress,  # nothing will change by itself: stop polling
        }
