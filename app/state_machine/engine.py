"""Fire an event: pick the first transition whose guard passes, run its actions, move the subject.
Timers: which of the current state's timers are due, and firing the earliest one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from app.platform.errors import TransitionNotAllowed
from app.state_machine.definition import Timer, Transition, WorkflowDefinition
from app.state_machine.parameters import duration
from app.state_machine.registry import Registry


class Subject(Protocol):
    state: str


@dataclass(frozen=True)
class Fired:
    event: str
    source: str
    target: str
    transition: Transition


@dataclass(frozen=True)
class DueTimer:
    timer: Timer
    due_at: datetime


class Engine:
    def __init__(self, definition: WorkflowDefinition, registry: Registry) -> None:
        self.definition = definition
        self.registry = registry

    def select(self, state: str, event: str, context: Any) -> Transition:
        """The first candidate whose guard passes; each named guard is asked once (`g` and `!g` share it)."""
        candidates = self.definition.transitions_from(state, event)
        answers: dict[str, bool] = {}
        for transition in candidates:
            guard = transition.guard
            if guard is None:
                return transition
            name = guard.removeprefix("!")
            if name not in answers:
                answers[name] = bool(self.registry.guards[name](context))
            if answers[name] != guard.startswith("!"):
                return transition
        label = self.definition.label(state)
        event_label = self.definition.events.get(event, event)
        raise TransitionNotAllowed(
            f"当前状态「{label}」不能执行「{event_label}」",
            details={"state": state, "event": event, "candidates": len(candidates)},
        )

    def fire(self, subject: Subject, event: str, context: Any) -> Fired:
        transition = self.select(subject.state, event, context)
        source = subject.state
        if transition.target != source:  # a loop leaves the subject untouched (an ORM object stays clean)
            subject.state = transition.target
        for action in transition.actions:
            self.registry.actions[action](context)
        return Fired(event, source, transition.target, transition)

    def timers(self, state: str, entered_at: datetime, parameters: Mapping[str, Any]) -> list[DueTimer]:
        """The state's timers with the instant each fires, earliest first (`parameters` resolved)."""
        due = [
            DueTimer(timer, duration(parameters, timer.after).after(entered_at))
            for timer in self.definition.states[state].timers
        ]
        return sorted(due, key=lambda item: item.due_at)

    def fire_due_timer(
        self, subject: Subject, entered_at: datetime, now: datetime, parameters: Mapping[str, Any], context: Any
    ) -> Fired | None:
        """Fire the earliest timer of the current state that is due at `now`; None when none is."""
        for item in self.timers(subject.state, entered_at, parameters):
            if item.due_at <= now:
                return self.fire(subject, item.timer.event, context)
        return None
