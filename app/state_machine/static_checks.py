"""Graph checks on a workflow: reachability, a way out to a final state, no exits from final states, and
no (state, event) pair that two transitions could both take."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from app.domain.problems import Problem, pointer
from app.state_machine.definition import Transition, WorkflowDefinition


def closure(start: Iterable[str], edges: Mapping[str, set[str]]) -> set[str]:
    """Every state reachable from `start` along `edges` (start included)."""
    seen = set(start)
    frontier = list(seen)
    while frontier:
        for following in edges.get(frontier.pop(), ()):
            if following not in seen:
                seen.add(following)
                frontier.append(following)
    return seen


def _exclusive(first: Transition, second: Transition) -> bool:
    """Two guards exclude each other when one is the other's negation ("x" and "!x")."""
    if first.guard is None or second.guard is None:
        return False
    return first.guard == "!" + second.guard or second.guard == "!" + first.guard


def static_problems(definition: WorkflowDefinition, source: str) -> list[Problem]:
    forward: dict[str, set[str]] = {}
    backward: dict[str, set[str]] = {}
    for transition in definition.transitions:
        forward.setdefault(transition.source, set()).add(transition.target)
        backward.setdefault(transition.target, set()).add(transition.source)
    reachable = closure([definition.initial], forward)
    finals = [name for name, state in definition.states.items() if state.final]
    can_finish = closure(finals, backward)
    problems = []
    for name in definition.states:
        if name not in reachable:
            problems.append(Problem(source, pointer("states", name), "状态不可达", f"state {name!r} is unreachable"))
        elif name not in can_finish:
            problems.append(
                Problem(
                    source,
                    pointer("states", name),
                    "该状态无法到达任何终态",
                    f"no path from state {name!r} to a final state",
                )
            )
    for index, transition in enumerate(definition.transitions):
        state = definition.states.get(transition.source)
        if state is not None and state.final:
            problems.append(
                Problem(
                    source, pointer("transitions", index, "from"), "终态不能再流转", "transition out of a final state"
                )
            )
        for earlier_index, earlier in enumerate(definition.transitions[:index]):
            same_trigger = (earlier.source, earlier.event) == (transition.source, transition.event)
            if same_trigger and not _exclusive(earlier, transition):
                problems.append(
                    Problem(
                        source,
                        pointer("transitions", index),
                        f"与第 {earlier_index} 条转换的状态和事件相同，但条件不互斥（应为 x 与 !x）",
                        f"same (state, event) as transition {earlier_index} without mutually exclusive guards",
                    )
                )
    return problems
