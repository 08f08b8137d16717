"""A wall-clock budget for validating one city config draft: the checks call `spend()` between steps (per
product, per form field, per schema error) and the validation stops with CONFIG_VALIDATION_TIMEOUT once the
budget is used up, so that no draft can keep a web worker busy. Outside `within_budget` nothing is limited."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from app.domain.problems import CityConfigInvalid, Problem

DEFAULT_BUDGET_S = 2.0


class ConfigValidationTimeout(CityConfigInvalid):
    """Validating the draft took longer than the budget; it is refused, whatever it holds."""

    code = "CONFIG_VALIDATION_TIMEOUT"
    http_status = 422

    def __init__(self, source: str, budget_s: float) -> None:
        problem = Problem(
            source,
            "/",
            f"配置校验超过时限（{budget_s:g} 秒），请简化配置（字段、正则表达式或继承层级过多）后重试",
            f"validation took longer than its {budget_s:g} s budget",
        )
        super().__init__(source, [problem])
        self.message = f"城市配置 {source} 校验超时（超过 {budget_s:g} 秒），未保存"


@dataclass(frozen=True)
class _Budget:
    source: str
    budget_s: float
    deadline: float
    clock: Callable[[], float]


_current: ContextVar[_Budget | None] = ContextVar("config_validation_budget", default=None)


@contextmanager
def within_budget(source: str, budget_s: float, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Validation of `source` inside the block may take `budget_s` seconds (wall clock) in all."""
    token = _current.set(_Budget(source, budget_s, clock() + budget_s, clock))
    try:
        yield
    finally:
        _current.reset(token)


def spend() -> None:
    """Raise ConfigValidationTimeout if the budget of the validation under way is used up."""
    budget = _current.get()
    if budget is not None and budget.clock() >= budget.deadline:
        raise ConfigValidationTimeout(budget.source, budget.budget_s)
