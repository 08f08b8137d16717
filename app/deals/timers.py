"""Workflow timers of deals fire by themselves: the worker calls `fire_due_timers` every few seconds.

A timer runs from the moment the deal entered its current state (a self-loop such as a partial arrival
does not restart it), with the durations of the city config the deal pinned."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import or_, select, tuple_
from sqlalchemy.orm import Session

from app.db.models import Deal, DealEvent
from app.deals.pinning import pinned_city
from app.deals.workflow import DealContext, fire
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime
from app.state_machine.engine import Engine
from app.state_machine.parameters import resolve

log = logging.getLogger("cunguan.timers")
ACTOR = "system:timer"


def _timed_states(rt: Runtime) -> list[tuple[str, int, str]]:
    return [
        (definition.id, definition.version, state.name)
        for definition in rt.workflows.values()
        for state in definition.states.values()
        if state.timers
    ]


def _entered_at(session: Session, deal: Deal) -> datetime:
    query = (
        select(DealEvent.created_at)
        .where(
            DealEvent.deal_id == deal.id,
            DealEvent.to_state == deal.state,
            or_(DealEvent.from_state.is_(None), DealEvent.from_state != deal.state),
        )
        .order_by(DealEvent.id.desc())
        .limit(1)
    )
    return session.scalar(query) or deal.created_at


def _fire_one(rt: Runtime, deal_id: int) -> bool:
    with rt.db.uow() as uow:
        session = uow.session
        deal = session.scalar(select(Deal).where(Deal.id == deal_id).with_for_update(skip_locked=True))
        if deal is None:  # another worker holds it
            return False
        definition = rt.workflow(deal.workflow_id, deal.workflow_version)
        if not definition.states[deal.state].timers:  # moved on since the candidates were listed
            return False
        overrides = pinned_city(rt, session, deal).product(deal.product).overrides()
        params = resolve(definition.parameters, overrides)
        now = rt.clock()
        timers = Engine(definition, rt.registry).timers(deal.state, _entered_at(session, deal), params)
        first = next((item for item in timers if item.due_at <= now), None)
        if first is None:
            return False
        detail = {"timer": first.timer.after, "due_at": first.due_at.isoformat()}
        fire(DealContext(rt, session, deal, ACTOR), first.timer.event, detail)
        uow.commit()
    return True


def fire_due_timers(rt: Runtime) -> int:
    """Fire the earliest due timer of every deal waiting in a timed state; returns how many fired.
    A deal whose timer cannot fire (a guard refuses, a bug) is logged and tried again next round."""
    timed = _timed_states(rt)
    if not timed:
        return 0
    with rt.db.uow() as uow:
        key = tuple_(Deal.workflow_id, Deal.workflow_version, Deal.state)
        deal_ids = list(uow.session.scalars(select(Deal.id).where(key.in_(timed)).order_by(Deal.id)))
    fired = 0
    for deal_id in deal_ids:
        try:
            fired += _fire_one(rt, deal_id)
        except CunguanError as error:
            log.warning("timer not fired", extra={"deal_id": deal_id, "code": error.code, "error": error.message})
    if fired:
        log.info("timers fired", extra={"fired": fired})
    return fired
