"""A bank's account-opening limits as the bank counts them, free of storage: never exceeded, fully used.

Banks count opening requests in a sliding one-second window on their own clock (and per Asia/Shanghai day):
at most `per_second` requests stamped within any second. The bank stamps a request somewhere between the moment
we start sending it and the moment its answer reaches us, so request k may start once the answer to request
k - per_second has been back for a second (plus a small margin): then the bank's stamps of the two are more than
a second apart whatever the network did in between, and whatever the offset of the bank's clock (both instants
are read on our clock; the offset cancels). This is a log of the last `per_second` sends (a sliding-window log),
not a token bucket: a bucket lets a full burst follow a second of refill, up to twice the limit in one second of
the bank's, and the bank refuses the excess.

All instants are integer milliseconds since the epoch, so the state stores exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from app.domain.timezone import SHANGHAI

WINDOW_MS = 1_000  # the bank's window
MARGIN_MS = 5  # on top of the window: the bank's `>=` at the window's edge, and rounding to milliseconds
IN_FLIGHT_EXPIRY_MS = 60_000  # a send never answered (its worker died) stops holding its place after this


@dataclass(frozen=True)
class Limits:
    per_second: int
    per_day: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.per_day <= 0:
            raise ValueError("limits must be positive")


@dataclass(frozen=True)
class Send:
    """One request of the log: started at `started_ms`; `answered_ms` is None while it is in flight."""

    ticket: str
    started_ms: int
    answered_ms: int | None = None

    def free_at_ms(self) -> int:
        """When the bank can no longer count this request in the same second as a new one."""
        end = self.answered_ms if self.answered_ms is not None else self.started_ms + IN_FLIGHT_EXPIRY_MS
        return end + WINDOW_MS + MARGIN_MS


@dataclass
class WindowState:
    sends: list[Send] = field(default_factory=list)  # at most `per_second` of them, the most recent
    day: date | None = None
    day_count: int = 0


def to_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def take(state: WindowState, limits: Limits, now: datetime, ticket: str) -> float:
    """Start a send now if the bank would accept it (returns 0.0; `state` records it under `ticket`), else the
    seconds to wait before one may start (nothing recorded; when a send still in flight is what blocks, a short
    wait, since its answer frees a place a second after it comes)."""
    now_ms, today = to_ms(now), now.astimezone(SHANGHAI).date()
    if state.day != today:
        state.day, state.day_count = today, 0
    if state.day_count >= limits.per_day:
        midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)
        return (midnight - now).total_seconds()
    sends = sorted(state.sends, key=Send.free_at_ms)[-limits.per_second :] if state.sends else []
    if len(sends) >= limits.per_second:
        oldest = sends[0]
        if oldest.free_at_ms() > now_ms:
            if oldest.answered_ms is None:
                return 0.05
            return (oldest.free_at_ms() - now_ms) / 1000
        sends = sends[1:]
    state.sends = [*sends, Send(ticket, now_ms)]
    state.day_count += 1
    return 0.0


def answered(state: WindowState, ticket: str, now: datetime) -> None:
    """The answer to send `ticket` came back now (accepted, refused or failed: the bank may have counted it)."""
    now_ms = to_ms(now)
    state.sends = [Send(s.ticket, s.started_ms, now_ms) if s.ticket == ticket else s for s in state.sends]


def refused(state: WindowState, limits: Limits, now: datetime) -> None:
    """The bank said we are over its limit (another client of its, a changed limit): count every place as used
    from now, so the next send waits a full window."""
    now_ms = to_ms(now)
    state.sends = [Send(f"refused-{n}", now_ms, now_ms) for n in range(limits.per_second)]


def free_places(state: WindowState, limits: Limits, now: datetime) -> int:
    """How many sends could start at once now (for screens)."""
    now_ms = to_ms(now)
    busy = sum(1 for s in state.sends if s.free_at_ms() > now_ms)
    return max(0, limits.per_second - busy)
