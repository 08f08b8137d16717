"""Fire an event: pick the first transition whose guard passes, run its actions, move the subject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from app.errors import TransitionNotAllowed
from app.state_machine.definition import Transition, WorkflowDefinition
from app.state_machine.registry import Registry


class Subject(Protocol):
    state: str


@dataclass(frozen=True)
class Fired:
    event: str
    source: str
    target: str
    transition: Transition


class Engine:
    def __init__(self, definition: WorkflowDefinition, registry: Registry) -> None:
        self.definition = definition
        self.registry = registry

    def select(self, state: str, event: str, context: Any) -> Transition:
        candidates = self.definition.transitions_from(state, event)
        for transition in candidates:
            if transition.guard is None or self.registry.guards[transition.guard](context):
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
        subject.state = transition.target
        for action in transition.actions:
            self.registry.actions[action](context)
        return Fired(event, source, transition.target, transition)
