"""Fire workflow events on deals: the engine (with the runtime's vocabulary) plus the timeline row and the
audit entry (`workflow.<event>`, state before and after) every transition and every timeline note writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.audit import log as audit
from app.db.models import Deal, DealEvent
from app.db.write_batch import inserting, write
from app.platform.errors import TransitionNotAllowed
from app.platform.runtime import Runtime
from app.state_machine.definition import Transition
from app.state_machine.engine import Engine, Fired

TIMELINE_ROW = inserting(
    DealEvent.__table__, ["deal_id", "event", "from_state", "to_state", "actor", "detail", "created_at"]
)


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
    row = transition_row(ctx.deal.id, fired.transition, ctx.actor, detail, ctx.rt.clock())
    _record(ctx, row)
    return fired


def _record(ctx: DealContext, row: dict[str, Any]) -> None:
    """The timeline row (a plain insert nothing reads back: it may wait for the next statement,
    `write_batch`) and its audit entry."""
    write(ctx.session, TIMELINE_ROW, row)
    _audit(ctx, row)


def _audit(ctx: DealContext, row: dict[str, Any]) -> None:
    """The deal event in the audit log: who, which deal, its state before and after, the timeline's detail."""
    audit.append(
        ctx.session,
        at=row["created_at"],
        actor=ctx.actor,
        action=f"workflow.{row['event']}"[:64],
        subject=f"deal:{ctx.deal.deal_no}",
        before={"state": row["from_state"]},
        after={"state": row["to_state"]},
        detail=row["detail"],
    )


def timeline_row(
    deal_id: int,
    event: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    detail: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """A timeline entry's row (DealEvent): what the runner adds one at a time, and a bulk insert for many."""
    return {
        "deal_id": deal_id,
        "event": event,
        "from_state": from_state,
        "to_state": to_state,
        "actor": actor,
        "detail": detail,
        "created_at": now,
    }


def transition_row(
    deal_id: int, transition: Transition, actor: str, detail: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The timeline row of a transition taken: its states, labelled with the transition's label unless
    `detail` names another."""
    detail = {"label": transition.label, **(detail or {})}
    return timeline_row(deal_id, transition.event, transition.source, transition.target, actor, detail, now)


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
    state = ctx.deal.state
    row = timeline_row(ctx.deal.id, event, state, state, ctx.actor, detail, ctx.rt.clock())
    _record(ctx, row)
