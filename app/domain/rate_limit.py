"""Token bucket with a daily quota, free of storage: the bank's opening limits, never exceeded.

Tokens are counted in thousandths so that the bucket state is exact integers in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from app.domain.timezone import SHANGHAI

MILLI = 1000


@dataclass(frozen=True)
class Limits:
    per_second: int
    per_day: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.per_day <= 0:
            raise ValueError("limits must be positive")


@dataclass
class BucketState:
    tokens_milli: int
    refreshed_at: datetime
    day: date
    day_count: int


def fresh_state(limits: Limits, now: datetime) -> BucketState:
    return BucketState(limits.per_second * MILLI, now, now.astimezone(SHANGHAI).date(), 0)


def take(state: BucketState, limits: Limits, now: datetime) -> float:
    """Take one token if there is one (returns 0.0, `state` updated); else the seconds to wait before a
    token can exist (the state is refilled but nothing is taken). The bucket holds at most one second's
    worth, so bursts never exceed the per-second limit; the day is a Shanghai calendar day."""
    today = now.astimezone(SHANGHAI).date()
    if today != state.day:
        state.day, state.day_count = today, 0
    elapsed_ms = max(0, int((now - state.refreshed_at).total_seconds() * 1000))
    capacity = limits.per_second * MILLI
    state.tokens_milli = min(capacity, state.tokens_milli + elapsed_ms * limits.per_second)
    state.refreshed_at = max(now, state.refreshed_at)
    if state.day_count >= limits.per_day:
        midnight = datetime.combine(today, datetime.min.time(), tzinfo=SHANGHAI)
        return (midnight.timestamp() + 86_400) - now.timestamp()
    if state.tokens_milli < MILLI:
        return (MILLI - state.tokens_milli) / (limits.per_second * MILLI)
    state.tokens_milli -= MILLI
    state.day_count += 1
    return 0.0
