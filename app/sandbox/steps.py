"""The steps of a simulated workflow path and why a path can fail: the guard a transition wants, a step of
the plan (the path's own or one run to reach its guard), and the two ways a path goes wrong besides a service's
error."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.errors import CunguanError
from app.sandbox.bank import BankProblem
from app.state_machine.definition import Transition

FAILURES = frozenset({"payout_failed", "refund_failed"})
LAST_GUARDS = frozenset({"last_rent_month", "last_stage"})


class Unreachable(Exception):
    """This city's config cannot make the transition's guard come out the way the path needs."""


class PathProblem(Exception):
    """The services did not do what the path needs although the config allows it: a finding."""


FAILURES_OF_A_PATH = (Unreachable, PathProblem, BankProblem, CunguanError)


def wants(transition: Transition) -> tuple[str, bool] | None:
    """(guard name, the value the path needs), or None for an unguarded transition."""
    if transition.guard is None:
        return None
    return transition.guard.lstrip("!"), not transition.guard.startswith("!")


@dataclass(frozen=True)
class Step:
    transition: Transition
    setup: bool  # run to reach the path's guard (earlier stages), not part of the path itself
