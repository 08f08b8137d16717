"""The workflow IR: plain frozen dataclasses that the loader builds and the engine runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Parameter:
    """A value the workflow needs (a deadline, a count, an amount); a city config may override the default."""

    name: str
    type: str  # integer | fen | bps | boolean | string | duration
    label: str
    default: Any
    minimum: int | None = None  # bounds of an integer, fen or bps value, inclusive
    maximum: int | None = None


@dataclass(frozen=True)
class Timer:
    """While in its state, fire `event` once the duration named by parameter `after` has passed."""

    after: str
    event: str


@dataclass(frozen=True)
class State:
    name: str
    label: str
    final: bool = False
    timers: tuple[Timer, ...] = ()


@dataclass(frozen=True)
class Transition:
    source: str
    event: str
    target: str
    label: str
    guard: str | None = None  # a registered guard's name, "!name" for its negation
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkflowDefinition:
    id: str
    version: int
    name: str
    initial: str
    states: dict[str, State]
    transitions: tuple[Transition, ...]
    events: dict[str, str] = field(default_factory=dict)  # event -> Chinese label
    parameters: dict[str, Parameter] = field(default_factory=dict)

    def transitions_from(self, state: str, event: str) -> list[Transition]:
        return [t for t in self.transitions if t.source == state and t.event == event]

    def events_from(self, state: str) -> list[str]:
        seen: dict[str, None] = {}
        for transition in self.transitions:
            if transition.source == state:
                seen.setdefault(transition.event)
        return list(seen)

    def label(self, state: str) -> str:
        return self.states[state].label if state in self.states else state
