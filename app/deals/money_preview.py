"""What a money-moving action on a deal would pay, shown to the person before they confirm it.

An event moves money when a transition it may take from the deal's current state runs an action the
vocabulary lists with a money effect (`registry.money`: release, refund…). The preview fires the event in a
transaction that is rolled back, and reads the payouts it would open: payee (masked), amount, and the
approvals each would wait for. Nothing of it is kept (no payout, hold, job, timeline row or audit entry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from app.db.models import Deal, Payout
from app.deals.service import MANUAL_ACTIONS, Actor, action_payload, load_for
from app.deals.workflow import DealContext, fire
from app.domain.pii_mask import mask_card, mask_name
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime


@dataclass(frozen=True)
class PlannedPayout:
    payee_name: str  # masked
    payee_account: str  # masked
    amount_fen: int
    purpose: str
    approvals_needed: int  # people other than the requester; 0: it goes to the bank at once


@dataclass(frozen=True)
class MoneyPreview:
    deal_id: int
    deal_no: str
    state: str
    event: str
    label: str
    payouts: list[PlannedPayout] = field(default_factory=list)
    problem: str | None = None  # why the action would be refused now (nothing to confirm)

    @property
    def total_fen(self) -> int:
        return sum(payout.amount_fen for payout in self.payouts)


def moves_money(rt: Runtime, deal: Deal, event: str) -> bool:
    """Whether `event` from the deal's current state may start a payout or a refund."""
    definition = rt.workflow(deal.workflow_id, deal.workflow_version)
    return any(
        action in rt.registry.money
        for transition in definition.transitions_from(deal.state, event)
        for action in transition.actions
    )


def money_state(rt: Runtime, actor: Actor, deal_id: int, event: str) -> str | None:
    """The deal's current state when `event` from it moves money (it needs a confirmation), else None."""
    with rt.db.uow() as uow:
        deal = load_for(uow.session, deal_id, actor)
        return deal.state if moves_money(rt, deal, event) else None


def _label(rt: Runtime, deal: Deal, event: str) -> str:
    if event in MANUAL_ACTIONS:
        return MANUAL_ACTIONS[event].label
    return rt.workflow(deal.workflow_id, deal.workflow_version).events.get(event, "确认操作")


def preview(rt: Runtime, actor: Actor, deal_id: int, event: str, inputs: dict[str, str]) -> MoneyPreview:
    """Fire `event` on the deal in a transaction that is rolled back and report the payouts it would open."""
    with rt.db.uow() as uow:
        deal = load_for(uow.session, deal_id, actor)
        base = {"deal_id": deal.id, "deal_no": deal.deal_no, "state": deal.state, "event": event}
        base["label"] = _label(rt, deal, event)
        known = set(uow.session.scalars(select(Payout.id).where(Payout.deal_id == deal.id)))
        try:
            payload: dict[str, Any] = action_payload(MANUAL_ACTIONS[event], inputs) if event in MANUAL_ACTIONS else {}
            fire(DealContext(rt, uow.session, deal, actor.label, payload), event, payload)
            uow.session.flush()
        except CunguanError as refused:
            return MoneyPreview(**base, problem=refused.message)
        opened = uow.session.scalars(select(Payout).where(Payout.deal_id == deal.id).order_by(Payout.id))
        planned = [
            PlannedPayout(
                payee_name=mask_name(payout.payee_name),
                payee_account=mask_card(payout.payee_account),
                amount_fen=payout.amount_fen,
                purpose=payout.purpose,
                approvals_needed=payout.approvals_needed if payout.status == "awaiting_approval" else 0,
            )
            for payout in opened
            if payout.id not in known
        ]
        return MoneyPreview(**base, payouts=planned)  # the session closes without a commit: nothing is kept
