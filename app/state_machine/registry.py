"""Named guards and actions: the vocabulary that workflow definitions compose.

A registry is built once at start-up by one function that lists every name (app.deals.vocabulary, called by
app.platform.bootstrap) and lives on the Runtime; nothing registers into one on import."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.state_machine.money_checks import MoneyEffect

Guard = Callable[[Any], bool]
Action = Callable[[Any], None]


class Registry:
    """Name -> callable. `guard(name)` and `action(name)` add one (a name only once); nothing else writes.
    An action that moves money is added with its `MoneyEffect` (what it does, which events answer it), which
    the workflows' money checks read (`money`)."""

    def __init__(self) -> None:
        self.guards: dict[str, Guard] = {}
        self.actions: dict[str, Action] = {}
        self.money: dict[str, MoneyEffect] = {}

    def guard(self, name: str) -> Callable[[Guard], Guard]:
        def register(function: Guard) -> Guard:
            if name in self.guards:
                raise ValueError(f"guard {name!r} registered twice")
            self.guards[name] = function
            return function

        return register

    def action(self, name: str, money: MoneyEffect | None = None) -> Callable[[Action], Action]:
        def register(function: Action) -> Action:
            if name in self.actions:
                raise ValueError(f"action {name!r} registered twice")
            self.actions[name] = function
            if money is not None:
                self.money[name] = money
            return function

        return register
