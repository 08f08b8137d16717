"""The ways through a workflow that a simulation runs: a set of paths from the initial state to a final state
that together take every pair of transitions that can follow each other (edge-pair coverage), each path
taking a transition at most once.

Every simple path is no measure: their number explodes with the workflow (resale escrow v2 has thousands),
so a cap cut them arbitrarily. Edge pairs are bounded by the transitions' fan-in times fan-out; each pair's
path is the shortest way to it and the shortest way on to an end, so paths share their beginnings (the
simulation runs a shared beginning once)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import pairwise

from app.state_machine.definition import Transition, WorkflowDefinition

Path = tuple[Transition, ...]


class _Graph:
    def __init__(self, definition: WorkflowDefinition) -> None:
        self.definition = definition
        self.outgoing: dict[str, list[int]] = {}
        self.incoming: dict[str, list[int]] = {}
        for number, transition in enumerate(definition.transitions):
            self.outgoing.setdefault(transition.source, []).append(number)
            self.incoming.setdefault(transition.target, []).append(number)

    def transition(self, number: int) -> Transition:
        return self.definition.transitions[number]

    def final(self, state: str) -> bool:
        return self.definition.states[state].final

    def shortest(self, start: str, goals: Iterable[str] | None, avoid: set[int]) -> list[int] | None:
        """The fewest transitions from `start` to one of `goals` (a final state when None), none in `avoid`."""
        wanted = set(goals) if goals is not None else None

        def reached(state: str) -> bool:
            return state in wanted if wanted is not None else self.final(state)

        queue: deque[tuple[str, list[int]]] = deque([(start, [])])
        seen = {start}
        while queue:
            state, way = queue.popleft()
            if reached(state):
                return way
            if self.final(state):
                continue
            for number in self.outgoing.get(state, []):
                target = self.transition(number).target
                if number not in avoid and target not in seen:
                    seen.add(target)
                    queue.append((target, [*way, number]))
        return None

    def through(self, pair: tuple[int, ...]) -> list[int] | None:
        """The shortest way from the initial state through the transitions of `pair` (which follow each
        other) on to a final state, taking no transition twice."""
        first = self.transition(pair[0])
        prefix = self.shortest(self.definition.initial, [first.source], set(pair))
        if prefix is None:
            return None
        taken = [*prefix, *pair]
        last = self.transition(pair[-1])
        suffix = self.shortest(last.target, None, set(taken))
        return None if suffix is None else [*taken, *suffix]


def covering_paths(definition: WorkflowDefinition) -> list[Path]:
    """Paths that take every transition pair (and every transition) that a path from the initial state can
    take, in the definition's order; a pair no simple path takes is left out (its transitions are then
    reported uncovered by the simulation if no other path takes them)."""
    graph = _Graph(definition)
    wanted: list[tuple[int, ...]] = []
    for number, transition in enumerate(definition.transitions):
        following = [] if graph.final(transition.target) else graph.outgoing.get(transition.target, [])
        wanted.extend((number, after) for after in following if after != number)
        wanted.append((number,))
    covered: set[tuple[int, ...]] = set()
    paths: list[list[int]] = []
    for requirement in wanted:
        if requirement in covered:
            continue
        way = graph.through(requirement)
        if way is None:
            continue
        paths.append(way)
        covered.update(pairwise(way))
        covered.update((number,) for number in way)
    unique = list(dict.fromkeys(tuple(way) for way in paths))
    return [tuple(graph.transition(number) for number in way) for way in sorted(unique)]
