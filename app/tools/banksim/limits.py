"""Account-opening limits per bank: new requests per second (sliding window) and per Asia/Shanghai day.

The defaults are the bank's contract (app.domain.banks); `/sim/limits` or `flask bank-sim limits` override them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.domain.banks import LimitError
from app.tools.banksim.banks import SimulatedBank
from app.tools.banksim.errors import SimulatorError
from app.tools.banksim.statements import bank_day, day_bounds
from app.tools.banksim.store import Transaction

WINDOW_S = 1.0


@dataclass(frozen=True)
class EffectiveLimits:
    per_second: int
    per_day: int
    overridden: bool


def effective_limits(tx: Transaction, bank: SimulatedBank) -> EffectiveLimits:
    override = tx.limit_override(bank.code)
    if override is None:
        return EffectiveLimits(bank.limits.per_second, bank.limits.per_day, overridden=False)
    return EffectiveLimits(*override, overridden=True)


def check_opening_limits(tx: Transaction, bank: SimulatedBank, now: float) -> None:
    """Raise the bank's own 429 error if one more new opening request would exceed a limit."""
    limits = effective_limits(tx, bank)
    day_start, day_end = day_bounds(bank_day(now))
    if tx.account_requests_since(bank.code, day_start) >= limits.per_day:
        raise _limit_exceeded(bank, bank.limits.per_day_error, "per_day", limits.per_day, day_end - now)
    if tx.account_requests_since(bank.code, now - WINDOW_S) >= limits.per_second:
        raise _limit_exceeded(bank, bank.limits.per_second_error, "per_second", limits.per_second, WINDOW_S)


def _limit_exceeded(bank: SimulatedBank, error: LimitError, limit: str, maximum: int, wait_s: float) -> SimulatorError:
    retry_after_s = max(1, math.ceil(wait_s))
    return SimulatorError(
        error.message,
        code=error.code,
        http_status=429,
        details={"bank": bank.code, "limit": limit, "max": maximum, "retry_after_s": retry_after_s},
        headers={"Retry-After": str(retry_after_s)},
    )
