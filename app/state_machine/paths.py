"""Every way through a workflow, for simulation: paths from the initial state to a final state in which
each transition is taken at most once (so a loop is walked at most once), bounded in length and number."""

from __future__ import annotations

from app.state_machine.definition import Transition, WorkflowDefinition

Path = tuple[Transition, ...]


def enumerate_paths(definition: WorkflowDefinition, *, max_length: int = 40, max_paths: int = 2_000) -> list[Path]:
    paths: list[Path] = []
    outgoing: dict[str, list[Transition]] = {}
    for transition in definition.transitions:
        outgoing.setdefault(transition.source, []).append(transition)

    def walk(state: str, taken: list[Transition], used: set[int]) -> None:
        if len(paths) >= max_paths:
            return
        if definition.states[state].final:
            paths.append(tuple(taken))
            return
        if len(taken) >= max_length:
            return
        for transition in outgoing.get(state, []):
            key = id(transition)
            if key in used:
                continue
            taken.append(transition)
            used.add(key)
            walk(transition.target, taken, used)
            used.discard(key)
            taken.pop()

    walk(definition.initial, [], set())
    return paths
