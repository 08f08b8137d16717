"""Fire workflow events on deals: the engine (with the runtime's vocabulary) plus the timeline row every
transition writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.db.models import Deal, DealEvent
from app.platform.errors import TransitionNotAllowed
from app.platform.runtime import Runtime
from app.state_machine.engine import Engine, Fired


@dataclass
class DealContext:
    """What guards and actions see: the runtime, the open session, the deal, who acts, the event data and
    (once fired) the event's name."""

    rt: Runtime
    session: Session
    deal: Deal
    actor: str
    payload: dict[str, Any] = field(default_factory=dict)
    event: str = ""


def fire(ctx: DealContext, event: str, detail: dict[str, Any] | None = None) -> Fired:
    definition = ctx.rt.workflow(ctx.deal.workflow_id, ctx.deal.workflow_version)
    ctx.event = event
    fired = Engine(definition, ctx.rt.registry).fire(ctx.deal, event, ctx)
    ctx.session.add(
        DealEvent(
            deal_id=ctx.deal.id,
            event=event,
            from_state=fired.source,
            to_state=fired.target,
            actor=ctx.actor,
            detail={"label": fired.transition.label, **(detail or {})},
            created_at=ctx.rt.clock(),
        )
    )
    return fired


def has_ended(rt: Runtime, deal: Deal) -> bool:
    """Whether the deal is in a final state of its workflow (closed, cancelled, refunded…)."""
    state = rt.workflow(deal.workflow_id, deal.workflow_version).states.get(deal.state)
    return state is not None and state.final


def fire_or_note(ctx: DealContext, event: str, detail: dict[str, Any]) -> str:
    """Fire the event; when the deal's state does not take it, keep the fact on the timeline instead."""
    try:
        fire(ctx, event, detail)
    except TransitionNotAllowed as refused:
        note(ctx, event, {"label": "已记录，未触发流转", "reason": refused.message, **detail})
        return "recorded_without_transition"
    return "processed"


def note(ctx: DealContext, event: str, detail: dict[str, Any]) -> None:
    """A timeline entry that does not move the deal (its state before and after is the current one)."""
    ctx.session.add(
        DealEvent(
            deal_id=ctx.deal.id,
            event=event,
            from_state=ctx.deal.state,
            to_state=ctx.deal.state,
            actor=ctx.actor,
            detail=detail,
            created_at=ctx.rt.clock(),
        )
    )
