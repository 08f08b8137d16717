"""A bank's account-opening limits as the bank counts them, free of storage: never exceeded, fully used.

Banks count opening requests in a sliding one-second window on their own clock (and per Asia/Shanghai day):
at most `per_second` requests stamped within any second. The bank stamps a request somewhere between the moment
we start sending it and the moment its answer reaches us. So each send of the log has a latest instant, on our
clock, at which the bank can have stamped it (`Send.stamped_by_ms`), and a new send may start once the send
`per_second` places back was stamped by more than a second (plus a small margin) ago: the new one is stamped
after it starts, so the bank's stamps of the two are over a second apart. This is a log of the last
`per_second` sends (a sliding-window log), not a token bucket: a bucket lets a full burst follow a second of
refill, up to twice the limit in one second of the bank's, and the bank refuses the excess.

Without more, "stamped by" is the answer's arrival, and every window loses a round trip. When the bank's
answer carries its own stamp of the request (`received_at`, bank protocol v1, optional), its clock's offset
from ours is bounded NTP-style: the bank stamped send i at b_i on its clock, no later than its answer a_i on
ours, so offset >= b_i - a_i for every i, and the largest of these (`bank_offset_ms`) is a lower bound of the
true offset (kept with the window, loosened by the clocks' possible drift as it ages). Send j was then stamped,
on our clock, by b_j - that bound (never after its answer): with a bank that answers in 100 ms, the window frees
about 100 ms earlier, whatever the bank's clock says.

The day is the bank's (Asia/Shanghai, by the earliest its clock can read: ours plus the offset bound), and no send
starts in its last second, so the daily quota is counted against the day the bank counts it in.

All instants are integer milliseconds since the epoch, so the state stores exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from app.domain.timezone import SHANGHAI

WINDOW_MS = 1_000  # the bank's window
MARGIN_MS = 5  # on top of the window: the bank's `>=` at the window's edge, and rounding to milliseconds
IN_FLIGHT_EXPIRY_MS = 60_000  # a send never answered (its worker died) stops holding its place after this
DRIFT_PPM = 100  # the most our clock and the bank's drift apart (NTP-disciplined clocks: a few ppm)
# Before any send of ours was answered: how long a request takes from our start to the bank's stamp (the
# simulator on this machine: 25-55 ms, its signature check included).
ASSUMED_TO_STAMP_MS = 40
IN_FLIGHT_LOOK_S = 0.02
# No send starts in the last second of the bank's day (by the earliest its clock can read): it could be stamped on
# either side of midnight, and counted against the wrong day's quota.
MIDNIGHT_GUARD_MS = 1_000  # the place is held by a send still in flight: look again this soon


@dataclass(frozen=True)
class Limits:
    per_second: int
    per_day: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.per_day <= 0:
            raise ValueError("limits must be positive")


@dataclass(frozen=True)
class Send:
    """One request of the log: started at `started_ms`; `answered_ms` is None while it is in flight; `bank_ms` is
    the bank's stamp of it on the bank's clock, when its answer carried one."""

    ticket: str
    started_ms: int
    answered_ms: int | None = None
    bank_ms: int | None = None

    def stamped_by_ms(self, offset_ms: int | None) -> int:
        """The latest instant on our clock at which the bank can have stamped this request: its answer's arrival,
        or earlier by what the bank's stamp and the offset bound tell (`bank_offset_ms`)."""
        if self.answered_ms is None:
            return self.started_ms + IN_FLIGHT_EXPIRY_MS
        if self.bank_ms is None or offset_ms is None:
            return self.answered_ms
        return min(self.answered_ms, self.bank_ms - offset_ms)

    def free_at_ms(self, offset_ms: int | None) -> int:
        """When the bank can no longer count this request in the same second as a new one."""
        return self.stamped_by_ms(offset_ms) + WINDOW_MS + MARGIN_MS


@dataclass
class WindowState:
    sends: list[Send] = field(default_factory=list)  # at most `per_second` of them, the most recent
    day: date | None = None
    day_count: int = 0
    offset_ms: int | None = None  # the tightest lower bound of (bank's clock - ours) seen, …
    offset_at_ms: int | None = None  # … measured then (our clock)


def bank_offset_ms(state: WindowState, now_ms: int) -> int | None:
    """A lower bound of (the bank's clock - ours) now: the largest `bank stamp - answer arrival` seen, loosened by
    the most the two clocks can drift apart since it was measured. None when no answer carried a stamp."""
    if state.offset_ms is None or state.offset_at_ms is None:
        return None
    return state.offset_ms - math.ceil(abs(now_ms - state.offset_at_ms) * DRIFT_PPM / 1_000_000)


def to_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def bank_today(state: WindowState, now: datetime) -> date:
    """The bank's Shanghai date now, as far as we can tell (our clock moved by the offset bound)."""
    offset_ms = bank_offset_ms(state, to_ms(now))
    return (now + timedelta(milliseconds=offset_ms or 0)).astimezone(SHANGHAI).date()


def opened_today(state: WindowState, now: datetime) -> int:
    """The sends the window counted on the bank's day now (0 once that day has turned)."""
    return state.day_count if state.day == bank_today(state, now) else 0


def take(state: WindowState, limits: Limits, now: datetime, ticket: str) -> float:
    """Start a send now if the bank would accept it (returns 0.0; `state` records it under `ticket`), else the
    seconds to wait before one may start (nothing recorded; when a send still in flight is what blocks, a short
    wait, since its answer frees a place a second after it comes)."""
    now_ms = to_ms(now)
    offset_ms = bank_offset_ms(state, now_ms)
    bank_now = now + timedelta(milliseconds=offset_ms or 0)  # the earliest the bank's clock reads now
    today = bank_now.astimezone(SHANGHAI).date()
    to_midnight_s = (datetime.combine(today + timedelta(days=1), time.min, tzinfo=SHANGHAI) - bank_now).total_seconds()
    if to_midnight_s * 1000 <= MIDNIGHT_GUARD_MS:
        return to_midnight_s
    if state.day != today:
        state.day, state.day_count = today, 0
    if state.day_count >= limits.per_day:
        return to_midnight_s
    sends = sorted(state.sends, key=lambda send: send.free_at_ms(offset_ms))[-limits.per_second :]
    if len(sends) >= limits.per_second:
        oldest = sends[0]
        if oldest.free_at_ms(offset_ms) > now_ms:
            if oldest.answered_ms is None:
                return IN_FLIGHT_LOOK_S
            return (oldest.free_at_ms(offset_ms) - now_ms) / 1000
        sends = sends[1:]
    state.sends = [*sends, Send(ticket, now_ms)]
    state.day_count += 1
    return 0.0


def answered(state: WindowState, ticket: str, now: datetime, bank_stamp: datetime | None = None) -> None:
    """The answer to send `ticket` came back now (accepted, refused or failed: the bank may have counted it),
    with the bank's stamp of the request when it gave one."""
    now_ms, bank_ms = to_ms(now), None if bank_stamp is None else to_ms(bank_stamp)
    state.sends = [Send(s.ticket, s.started_ms, now_ms, bank_ms) if s.ticket == ticket else s for s in state.sends]
    if bank_ms is not None:
        known = bank_offset_ms(state, now_ms)
        if known is None or bank_ms - now_ms >= known:
            state.offset_ms, state.offset_at_ms = bank_ms - now_ms, now_ms


def refused(state: WindowState, limits: Limits, now: datetime) -> None:
    """The bank said we are over its limit (another client of its, a changed limit): count every place as used
    from now, so the next send waits a full window."""
    now_ms = to_ms(now)
    state.sends = [Send(f"refused-{n}", now_ms, now_ms) for n in range(limits.per_second)]
    state.offset_ms = state.offset_at_ms = None  # a clock that stepped, perhaps: measure the offset afresh


def free_places(state: WindowState, limits: Limits, now: datetime) -> int:
    """How many sends could start at once now (for screens)."""
    now_ms = to_ms(now)
    offset_ms = bank_offset_ms(state, now_ms)
    busy = sum(1 for s in state.sends if s.free_at_ms(offset_ms) > now_ms)
    return max(0, limits.per_second - busy)


def achievable_per_second(state: WindowState, limits: Limits, now: datetime) -> float:
    """The pace a steady queue keeps under this window: `per_second` sends per window + margin + the time a send
    takes from our start to its latest possible stamp (the median of the log's answered sends, with the bank's
    stamps the way to the bank, without them the whole round trip; ASSUMED_TO_STAMP_MS before any)."""
    offset_ms = bank_offset_ms(state, to_ms(now))
    delays = sorted(s.stamped_by_ms(offset_ms) - s.started_ms for s in state.sends if s.answered_ms is not None)
    to_stamp_ms = delays[len(delays) // 2] if delays else ASSUMED_TO_STAMP_MS
    return limits.per_second * 1000 / (WINDOW_MS + MARGIN_MS + max(0, to_stamp_ms))
