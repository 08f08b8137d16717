"""Money checks on a workflow, run when it is loaded: the deal never waits for a bank answer nothing asked for,
never misses one that can come, and can always give the money back while it holds some.

The vocabulary declares, with each action that moves money, what it does (`MoneyEffect`): brings money into
custody, releases it to the payee, or refunds it by original route, and which outcome events answer it (the
bank's result of a payout group, a freeze). From that:
1. a transition that starts an awaited money movement goes to a state that is not final and takes every
   outcome event the movement may end with (else the answer is only noted and the deal waits for ever);
2. a state that waits for an outcome event is only entered by transitions that start something that can end
   with it (else nothing will ever answer);
3. every state that may hold the parties' money (reachable once money came in, not waiting for the bank) has
   a way, by a person's action or a timer, to a refund by original route without a person releasing money
   first (a deal that fails gets its money back)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from app.domain.problems import Problem, pointer
from app.state_machine.definition import Transition, WorkflowDefinition
from app.state_machine.static_checks import closure

Kind = Literal["in", "release", "refund"]


@dataclass(frozen=True)
class MoneyEffect:
    """What an action does with money: `in` (money into custody), `release` (to the payee the agreement
    names), `refund` (back by original route); `outcomes` are the events that answer it. An action that is not
    `awaited` is answered after the deal may have ended (an overpayment sent back on closing): its answer is
    kept on the timeline."""

    kind: Kind
    outcomes: frozenset[str] = frozenset()
    awaited: bool = True


def _effects(transition: Transition, effects: Mapping[str, MoneyEffect]) -> list[MoneyEffect]:
    return [effects[action] for action in transition.actions if action in effects]


def _outcomes(transition: Transition, effects: Mapping[str, MoneyEffect]) -> set[str]:
    return {event for effect in _effects(transition, effects) if effect.awaited for event in effect.outcomes}


def _kinds(transition: Transition, effects: Mapping[str, MoneyEffect]) -> set[str]:
    return {effect.kind for effect in _effects(transition, effects)}


def _unanswered(definition: WorkflowDefinition, effects: Mapping[str, MoneyEffect], source: str) -> list[Problem]:
    """Rule 1: every outcome a transition's money movement may end with is taken where it leads."""
    problems = []
    for index, transition in enumerate(definition.transitions):
        outcomes = _outcomes(transition, effects)
        if not outcomes:
            continue
        target = definition.states[transition.target]
        if target.final:
            problems.append(
                Problem(
                    source,
                    pointer("transitions", index, "to"),
                    f"发起划付后不能直接进入终态「{target.label}」，存管单须等到银行结果再结束",
                    f"transition starts {sorted(outcomes)} but goes to the final state {target.name!r}",
                )
            )
            continue
        taken = set(definition.events_from(target.name))
        for event in sorted(outcomes - taken):
            problems.append(
                Problem(
                    source,
                    pointer("transitions", index, "to"),
                    f"划付可能以「{definition.events.get(event, event)}」结束，但状态「{target.label}」不处理该事件，"
                    "存管单将一直等待",
                    f"state {target.name!r} does not take outcome event {event!r} that this transition may produce",
                )
            )
    return problems


def _unprompted(definition: WorkflowDefinition, effects: Mapping[str, MoneyEffect], source: str) -> list[Problem]:
    """Rule 2: a state waiting for an outcome is entered only by transitions that can bring it about."""
    outcome_events = {event for effect in effects.values() for event in effect.outcomes}
    problems = []
    for name, state in definition.states.items():
        waits = set(definition.events_from(name)) & outcome_events
        if not waits:
            continue
        for index, transition in enumerate(definition.transitions):
            if transition.target != name or transition.source == name:
                continue
            for event in sorted(waits - _outcomes(transition, effects)):
                problems.append(
                    Problem(
                        source,
                        pointer("transitions", index),
                        f"进入「{state.label}」后等待「{definition.events.get(event, event)}」，"
                        "但该流转的动作不会产生此结果",
                        f"state {name!r} waits for {event!r} but no action of this transition can produce it",
                    )
                )
    return problems


def funded_states(definition: WorkflowDefinition, effects: Mapping[str, MoneyEffect]) -> set[str]:
    """States that may hold the parties' money: reachable once money came in, not final, not waiting for the
    bank's answer (a payout or refund in flight)."""
    outcome_events = {event for effect in effects.values() for event in effect.outcomes}
    forward: dict[str, set[str]] = {}
    for transition in definition.transitions:
        forward.setdefault(transition.source, set()).add(transition.target)
    entered = {t.target for t in definition.transitions if "in" in _kinds(t, effects)}
    return {
        name
        for name in closure(entered, forward)
        if not definition.states[name].final and not set(definition.events_from(name)) & outcome_events
    }


def _refundable(definition: WorkflowDefinition, effects: Mapping[str, MoneyEffect]) -> set[str]:
    """States from which a refund by original route can be started without a person releasing money first (a
    release on a timer is the agreement's own schedule, e.g. a month's rent to the landlord: the way goes on
    after it)."""
    backward: dict[str, set[str]] = {}
    starts = set()
    for transition in definition.transitions:
        kinds = _kinds(transition, effects)
        scheduled = transition.event in {timer.event for timer in definition.states[transition.source].timers}
        if "refund" in kinds:
            starts.add(transition.source)
        elif "release" not in kinds or scheduled:
            backward.setdefault(transition.target, set()).add(transition.source)
    return closure(starts, backward)


def _unrefundable(definition: WorkflowDefinition, effects: Mapping[str, MoneyEffect], source: str) -> list[Problem]:
    """Rule 3: money held can always go back by original route (a deal that fails is refunded)."""
    refundable = _refundable(definition, effects)
    return [
        Problem(
            source,
            pointer("states", name),
            f"状态「{definition.states[name].label}」可能持有存管资金，"
            "但没有不经放款即原路退回的流转（交易失败时无法退款）",
            f"funded state {name!r} has no way to a refund by original route that does not release money first",
        )
        for name in sorted(funded_states(definition, effects) - refundable)
    ]


def money_problems(definition: WorkflowDefinition, effects: Mapping[str, MoneyEffect], source: str) -> list[Problem]:
    return (
        _unanswered(definition, effects, source)
        + _unprompted(definition, effects, source)
        + _unrefundable(definition, effects, source)
    )
