"""The opening window's decisions with the bank's own stamps (app.domain.rate_limit), on a fake clock: the bank's
clock off by up to ±300 ms, network delays that jitter both ways, several senders at once. The bank never sees
more than its limit in any second of its clock, and a steady queue uses at least 95 % of the limit."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.rate_limit import (
    Limits,
    Send,
    WindowState,
    achievable_per_second,
    answered,
    bank_offset_ms,
    free_places,
    refused,
    take,
    to_ms,
)
from app.domain.timezone import SHANGHAI

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_the_banks_stamp_frees_a_place_before_the_answer_has_been_back_a_second() -> None:
    limits, state = Limits(per_second=2, per_day=100), WindowState()
    assert take(state, limits, _at(0), "a") == take(state, limits, _at(0), "b") == 0.0
    # the bank's clock is 300 ms ahead; it stamps a at 20 ms and b at 30 ms (our clock); b's answer is slow
    answered(state, "a", _at(40), _at(320))
    answered(state, "b", _at(200), _at(330))
    assert bank_offset_ms(state, to_ms(_at(40))) == 280, "a's stamp - a's answer: the bank is at least 280 ms ahead"
    assert bank_offset_ms(state, to_ms(_at(10_040))) == 279, "loosened by 100 ppm of drift over 10 s"
    assert take(state, limits, _at(1044), "c") == pytest.approx(0.001), "a: stamped by 40 ms, + 1 s + 5 ms"
    assert take(state, limits, _at(1045), "c") == 0.0
    assert take(state, limits, _at(1045), "d") == pytest.approx(0.011), "b stamped by 330 - 279 = 51 ms, not 200"
    assert take(state, limits, _at(1056), "d") == 0.0


def test_a_refusal_forgets_the_offset_and_fills_the_window() -> None:
    limits, state = Limits(per_second=3, per_day=100), WindowState()
    assert take(state, limits, _at(0), "a") == 0.0
    answered(state, "a", _at(50), _at(-260))
    refused(state, limits, _at(100))
    assert (state.offset_ms, bank_offset_ms(state, to_ms(_at(100)))) == (None, None)
    assert take(state, limits, _at(1104), "b") == pytest.approx(0.001)


def test_without_a_stamp_the_answer_bounds_the_bank_stamp_and_in_flight_sends_hold_their_places() -> None:
    limits, state = Limits(per_second=1, per_day=100), WindowState()
    assert take(state, limits, _at(0), "a") == 0.0
    assert take(state, limits, _at(500), "b") > 0, "a is in flight"
    answered(state, "a", _at(150))
    assert bank_offset_ms(state, to_ms(_at(150))) is None
    assert take(state, limits, _at(1154), "b") == pytest.approx(0.001)
    assert take(state, limits, _at(1155), "b") == 0.0
    assert free_places(state, limits, _at(1155)) == 0


def test_stored_sends_without_a_bank_stamp_still_read() -> None:
    """A row written before stamps (three fields per send) reads as sends without a stamp."""
    assert Send(*["t", 1, 2]) == Send("t", 1, 2, None)


@dataclass(order=True)
class _Event:
    at_ms: int
    order: int
    kind: str = field(compare=False)  # "try" (a sender asks for a place) or "answer"
    sender: int = field(compare=False)
    ticket: str = field(compare=False, default="")
    bank_ms: int = field(compare=False, default=0)


@dataclass
class _Bank:
    """The bank as the simulator counts: a request stamped at b is refused when `per_second` requests it
    accepted are stamped within [b - 1 s, b]."""

    per_second: int
    stamps: list[int] = field(default_factory=list)
    refused: int = 0

    def receive(self, stamp_ms: int) -> None:
        if sum(1 for s in self.stamps if stamp_ms - 1000 <= s <= stamp_ms) >= self.per_second:
            self.refused += 1
        else:
            self.stamps.append(stamp_ms)


def _run(
    limits: Limits,
    senders: int,
    duration_ms: int,
    offset_ms: int,
    delays: random.Random,
    *,
    stamps_in_answer: bool = True,
    to_bank_ms: int = 20,
    back_ms: int = 200,
) -> _Bank:
    """`senders` job loops sending without pause for `duration_ms`: each takes a place (or waits what `take`
    says), sends, the bank stamps it on its clock (ours + `offset_ms`) after 0 to `to_bank_ms`, its answer
    comes back after 0 to `back_ms` more (the bank's work after the stamp, the way back); then the loop goes
    on 10 ms later (recording the answer, claiming the next job)."""
    state, bank, events, order = WindowState(), _Bank(limits.per_second), [], 0
    for sender in range(senders):
        heapq.heappush(events, _Event(0, order := order + 1, "try", sender))
    while events:
        event = heapq.heappop(events)
        if event.kind == "answer":
            answered(state, event.ticket, _at(event.at_ms), _at(event.bank_ms) if stamps_in_answer else None)
            heapq.heappush(events, _Event(event.at_ms + 10, order := order + 1, "try", event.sender))
            continue
        if event.at_ms >= duration_ms:
            continue
        ticket = f"s{order}"
        wait_s = take(state, limits, _at(event.at_ms), ticket)
        if wait_s > 0:
            heapq.heappush(events, _Event(event.at_ms + round(wait_s * 1000), order := order + 1, "try", event.sender))
            continue
        stamped_ms = event.at_ms + delays.randint(0, to_bank_ms)
        bank.receive(stamped_ms + offset_ms)
        answer_ms = stamped_ms + delays.randint(0, back_ms)
        answer = _Event(answer_ms, order := order + 1, "answer", event.sender, ticket, stamped_ms + offset_ms)
        heapq.heappush(events, answer)
    return bank


def _most_in_one_second(stamps: list[int]) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for other in stamps[i:] if other - stamp <= 1000) for i, stamp in enumerate(stamps))


@settings(max_examples=40, deadline=None)
@given(
    per_second=st.integers(1, 8),
    senders=st.integers(1, 12),
    offset_ms=st.integers(-300, 300),
    to_bank_ms=st.integers(0, 250),
    back_ms=st.integers(0, 250),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_bank_never_counts_more_than_its_limit_in_a_second_of_its_clock(
    per_second: int, senders: int, offset_ms: int, to_bank_ms: int, back_ms: int, seed: int
) -> None:
    delays = random.Random(seed)
    bank = _run(Limits(per_second, 100_000), senders, 5_000, offset_ms, delays, to_bank_ms=to_bank_ms, back_ms=back_ms)
    assert bank.refused == 0
    assert _most_in_one_second(bank.stamps) <= per_second
    assert len(bank.stamps) >= min(per_second, senders), "it sent at all"


@pytest.mark.parametrize("offset_ms", [-300, 0, 300])
def test_a_steady_queue_uses_at_least_95_percent_of_the_limit(offset_ms: int) -> None:
    """20/s, six senders, 0-20 ms to the bank's stamp and 0-200 ms back: over 60 s of the fake clock, ≥ 95 % of
    1,200 stamps and no refusal; paced by the answers alone (no stamp in them), the way back is lost per window:
    under 92 %. (The way to the bank is lost either way: nothing bounds it from below.)"""
    limits = Limits(per_second=20, per_day=100_000)
    with_stamps = _run(limits, 6, 60_000, offset_ms, random.Random(21))
    assert with_stamps.refused == 0
    assert len(with_stamps.stamps) >= 0.95 * 20 * 60
    by_answers = _run(limits, 6, 60_000, offset_ms, random.Random(21), stamps_in_answer=False)
    assert by_answers.refused == 0
    assert len(by_answers.stamps) < 0.92 * 20 * 60


def test_the_daily_quota_is_exact_whatever_the_stamps() -> None:
    limits = Limits(per_second=50, per_day=30)
    bank = _run(limits, 6, 20_000, 300, random.Random(5))
    assert len(bank.stamps) == 30 and bank.refused == 0


def test_the_achievable_pace_is_the_limit_less_the_margin_and_the_way_to_the_stamp() -> None:
    limits, state = Limits(per_second=20, per_day=100_000), WindowState()
    assert achievable_per_second(state, limits, _at(0)) == pytest.approx(20_000 / 1_045), "40 ms assumed at first"
    for n, (to_stamp_ms, back_ms) in enumerate([(10, 90), (30, 60), (20, 200)]):
        assert take(state, limits, _at(0), f"s{n}") == 0.0
        answered(state, f"s{n}", _at(to_stamp_ms + back_ms), _at(to_stamp_ms + 300))  # the bank 300 ms ahead
    # offset bound 300 - 60 = 240 (from s1), 239 with drift since; stamped by 71, 91, 81 ms: median 81
    assert achievable_per_second(state, limits, _at(400)) == pytest.approx(20_000 / 1_086)
    unstamped = WindowState()
    assert take(unstamped, limits, _at(0), "a") == 0.0
    answered(unstamped, "a", _at(150))
    assert achievable_per_second(unstamped, limits, _at(400)) == pytest.approx(20_000 / 1_155), "a round trip"


def test_the_daily_quota_follows_the_banks_day_and_no_send_starts_in_its_last_second() -> None:
    """The bank's clock is 300 ms ahead, its stamps come 30 ms before its answers: the offset bound is 270 ms
    (269 with drift), so its midnight (Shanghai) comes by our 23:59:59.731 at the latest."""
    limits, state = Limits(per_second=5, per_day=2), WindowState()
    our_midnight_ms = to_ms(datetime(2026, 11, 24, tzinfo=SHANGHAI))
    evening = our_midnight_ms - to_ms(T0) - 10_000  # our 23:59:50
    for n in range(2):
        assert take(state, limits, _at(evening), f"s{n}") == 0.0
        answered(state, f"s{n}", _at(evening + 50), _at(evening + 20 + 300))
    assert take(state, limits, _at(evening + 100), "late") == pytest.approx(9.631), "the quota: until its midnight"
    assert take(state, limits, _at(evening + 8_800), "late") == pytest.approx(0.931), "and not in its last second"
    assert take(state, limits, _at(evening + 9_702), "late") == pytest.approx(0.029), "29 ms of its day left"
    assert take(state, limits, _at(evening + 9_731), "late") == 0.0, "the bank's new day"
