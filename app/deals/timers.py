"""Workflow timers of deals fire by themselves: the worker calls `fire_due_timers` every few seconds.

A timer runs from the moment the deal entered its current state (a self-loop such as a partial arrival
does not restart it), with the durations of the city config the deal pinned; working-day durations count on
the business calendar (and the deal's bank's cut-off where the config says so)."""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, tuple_
from sqlalchemy.orm import Session, defer

from app.db.models import Deal, DealEvent
from app.db.pii import encrypted_columns
from app.db.session import Database
from app.deals.pinning import pinnable_cities, pinned_city
from app.deals.workflow import DealContext, fire
from app.definitions.banks import pinned_bank
from app.domain.banks import DEFAULT_CUT_OFF
from app.domain.business_calendar import CalendarMissing
from app.domain.durations import WorkingDays
from app.domain.timezone import SHANGHAI
from app.figures import totals
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime
from app.state_machine.definition import WorkflowDefinition
from app.state_machine.engine import DueTimer, Engine
from app.state_machine.parameters import deadline_texts, resolve, with_calendar

log = logging.getLogger("cunguan.timers")
ACTOR = "system:timer"
# A deal whose timers were computed and none was due is not computed again, in this process, before its earliest
# timer falls due - unless its row changed (its version: a transition, a freeze) or RECHECK has passed (a calendar
# published meanwhile may move a working-day deadline earlier). Without it every round recomputed every waiting deal
# (five statements each): with 1,500 imported contracts waiting for their accounts, 83 % of a worker's CPU.
RECHECK = timedelta(seconds=60)
_not_due: weakref.WeakKeyDictionary[Database, dict[int, tuple[int, datetime, datetime]]] = weakref.WeakKeyDictionary()
_not_due_lock = threading.Lock()


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


def _overrides(rt: Runtime, session: Session, deal: Deal) -> dict[str, Any]:
    """The workflow parameters the deal's pinned city config sets."""
    return pinned_city(rt, session, deal).product(deal.product).overrides()


def _deal_parameters(
    rt: Runtime, deal: Deal, definition: WorkflowDefinition, overrides: dict[str, Any]
) -> dict[str, Any]:
    """The workflow's parameters for the deal: its pinned city's `overrides` over the defaults, working days
    counted on the platform's calendar with the cut-off of the bank config the deal pinned."""
    bank = pinned_bank(rt.definitions, rt.known_banks, deal)
    cut_off = bank.cut_off if bank is not None else DEFAULT_CUT_OFF
    return with_calendar(resolve(definition.parameters, overrides), rt.calendars, cut_off)


def _timers(
    rt: Runtime, session: Session, deal: Deal, definition: WorkflowDefinition, overrides: dict[str, Any]
) -> list[DueTimer]:
    params = _deal_parameters(rt, deal, definition, overrides)
    return Engine(definition, rt.registry).timers(deal.state, _entered_at(session, deal), params)


def deal_timers(rt: Runtime, session: Session, deal: Deal) -> list[DueTimer]:
    """The timers of the deal's current state with the instant each fires, earliest first; CalendarMissing
    when a working-day deadline needs a year without a complete calendar."""
    definition = rt.workflow(deal.workflow_id, deal.workflow_version)
    return _timers(rt, session, deal, definition, _overrides(rt, session, deal))


@dataclass(frozen=True)
class DeadlineView:
    """A deadline of the deal's workflow as the deal page shows it."""

    label: str  # 入金期限
    text: str  # 3个工作日
    due_at: datetime | None = None  # when it runs out, if it runs in the deal's current state
    problem: str | None = None  # why it cannot be computed (no calendar for the year)


def deadline_views(rt: Runtime, session: Session, deal: Deal) -> list[DeadlineView]:
    definition = rt.workflow(deal.workflow_id, deal.workflow_version)
    overrides = _overrides(rt, session, deal)  # read once for the texts and the instants
    texts = deadline_texts(definition.parameters, overrides)
    try:
        timers = _timers(rt, session, deal, definition, overrides)
        due, problem = {item.timer.after: item.due_at for item in timers}, None
    except CalendarMissing as missing:
        due, problem = {}, missing.message
    running = {timer.after for timer in definition.states[deal.state].timers}
    return [
        DeadlineView(definition.parameters[name].label, text, due.get(name), problem if name in running else None)
        for name, text in texts.items()
    ]


def _local_year(moment: datetime) -> int:
    return moment.astimezone(SHANGHAI).year


def _not_due_until(rt: Runtime) -> dict[int, tuple[int, datetime, datetime]]:
    """deal id -> (its version when computed, not due before, computed at), for this database."""
    with _not_due_lock:
        return _not_due.setdefault(rt.db, {})


def _fire_one(rt: Runtime, deal_id: int) -> bool:
    """Fire the deal's earliest due timer; False when none is due (remembered until it may be) or another worker
    holds the deal."""
    with rt.db.uow() as uow:
        session = uow.session
        deal = session.scalar(select(Deal).where(Deal.id == deal_id).with_for_update(skip_locked=True))
        if deal is None:  # another worker holds it
            return False
        definition = rt.workflow(deal.workflow_id, deal.workflow_version)
        if not definition.states[deal.state].timers:  # moved on since the candidates were listed
            return False
        params = _deal_parameters(rt, deal, definition, _overrides(rt, session, deal))
        now, entered_at = rt.clock(), _entered_at(session, deal)
        try:
            timers = Engine(definition, rt.registry).timers(deal.state, entered_at, params)
        except CalendarMissing as missing:
            if now < missing.year_starts_at:  # its deadline lies in that year: not due yet (the calendar alert says)
                _not_due_until(rt)[deal.id] = (deal.version, missing.year_starts_at, now)
                return False
            raise
        first = next((item for item in timers if item.due_at <= now), None)
        if first is None:
            if timers:
                _not_due_until(rt)[deal.id] = (deal.version, min(item.due_at for item in timers), now)
            return False
        detail: dict[str, Any] = {"timer": first.timer.after, "due_at": first.due_at.isoformat()}
        if isinstance(params[first.timer.after], WorkingDays):  # the calendar files it counted on
            detail["calendar"] = rt.calendars.hashes(_local_year(entered_at), _local_year(first.due_at))
        fire(DealContext(rt, session, deal, ACTOR), first.timer.event, detail)
        uow.commit()
    return True


def calendar_misses(rt: Runtime) -> list[tuple[str, int]]:
    """(deal number, year) of every deal waiting in a timed state whose working-day deadline needs a year
    without a complete business calendar: its timer cannot fire until the year's calendar is published.
    Only deals whose running timers count working days are looked at (decided once per workflow state and
    pinned config), read without their encrypted columns."""
    timed = _timed_states(rt)
    if not timed:
        return []
    misses = []
    counts_working_days: dict[tuple[str, int, str, str, str], bool] = {}
    with rt.db.uow() as uow:
        timed = _may_count_working_days(rt, uow.session, timed)
        if not timed:  # the common case, decided from the kept figures and the configs alone: no deal is read
            return []
        key = tuple_(Deal.workflow_id, Deal.workflow_version, Deal.state)
        query = select(Deal).options(*(defer(column) for column in encrypted_columns(Deal)))
        for deal in uow.session.scalars(query.where(key.in_(timed)).order_by(Deal.id)):
            definition = rt.workflow(deal.workflow_id, deal.workflow_version)
            overrides = _overrides(rt, uow.session, deal)
            group = (deal.workflow_id, deal.workflow_version, deal.state, deal.product, deal.city_config_sha256)
            if group not in counts_working_days:
                params = resolve(definition.parameters, overrides)
                running = definition.states[deal.state].timers
                counts_working_days[group] = any(isinstance(params[timer.after], WorkingDays) for timer in running)
            if not counts_working_days[group]:
                continue
            try:
                _timers(rt, uow.session, deal, definition, overrides)
            except CalendarMissing as missing:
                misses.append((deal.deal_no, missing.year))
    return misses


def _may_count_working_days(
    rt: Runtime, session: Session, timed: list[tuple[str, int, str]]
) -> list[tuple[str, int, str]]:
    """The timed (workflow, version, state) that some deal is in (the kept deal figures) and whose running timers
    count working days under some config a deal can have pinned; only deals in those are worth a look."""
    present: dict[tuple[str, int, str], set[str]] = {}
    for key, count in totals.read(session.connection()).deals.items():
        if count > 0:
            present.setdefault((key.workflow_id, key.workflow_version, key.state), set()).add(key.product)
    cities = pinnable_cities(rt, session)
    wanted = []
    for workflow_id, version, state in timed:
        products = present.get((workflow_id, version, state))
        if not products or (workflow_id, version) not in rt.workflows:
            continue
        definition = rt.workflow(workflow_id, version)
        running = definition.states[state].timers
        for city in cities:
            configs = [city.products[product] for product in products if city.products.get(product) is not None]
            if any(
                isinstance(resolve(definition.parameters, config.overrides())[timer.after], WorkingDays)
                for config in configs
                for timer in running
            ):
                wanted.append((workflow_id, version, state))
                break
    return wanted


def fire_due_timers(rt: Runtime) -> int:
    """Fire the earliest due timer of every deal waiting in a timed state; returns how many fired.
    A deal whose timer cannot fire (a guard refuses, a bug) is logged and tried again next round."""
    timed = _timed_states(rt)
    if not timed:
        return 0
    with rt.db.uow() as uow:
        key = tuple_(Deal.workflow_id, Deal.workflow_version, Deal.state)
        waiting = uow.session.execute(select(Deal.id, Deal.version).where(key.in_(timed)).order_by(Deal.id)).all()
    now, remembered = rt.clock(), _not_due_until(rt)
    for deal_id in set(remembered) - {deal_id for deal_id, _ in waiting}:  # moved on: forgotten
        remembered.pop(deal_id, None)
    fired = 0
    for deal_id, version in waiting:
        memo = remembered.get(deal_id)
        if memo is not None and memo[0] == version and now < memo[1] and now - memo[2] < RECHECK:
            continue  # computed before, unchanged since, not due yet
        remembered.pop(deal_id, None)
        try:
            fired += _fire_one(rt, deal_id)
        except CunguanError as error:  # CALENDAR_MISSING too: the calendar alert names the deal
            log.warning("timer not fired", extra={"deal_id": deal_id, "code": error.code, "error": error.message})
    if fired:
        log.info("timers fired", extra={"fired": fired})
    return fired
