"""The workflow IR: plain frozen dataclasses that the loader builds and the engine runs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class State:
    name: str
    label: str
    final: bool = False


@dataclass(frozen=True)
class Transition:
    source: str
    event: str
    target: str
    label: str
    guard: str | None = None
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
