"""How many jobs of one bank and of one kind a worker process runs at once: a bank that answers slowly (or
times out) fills only its own slots, and every other bank's jobs go on with the remaining threads. A bank may have
more slots than the default (`per_bank_of`): enough sends in flight to keep up with its opening limit."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Full:
    """What a claim must skip now: the banks and the job kinds whose slots are all taken."""

    banks: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()


@dataclass
class Slots:
    """Per-bank and per-kind limits on the jobs this process runs at once (a kind without a limit of its own
    has none). Thread-safe; `claiming()` serialises this process's claims so that no limit is overshot
    between looking at the slots and taking one."""

    per_bank: int
    per_kind: Mapping[str, int] = field(default_factory=dict)
    per_bank_of: Mapping[str, int] = field(default_factory=dict)  # a bank's own limit, instead of per_bank
    _banks: Counter[str] = field(default_factory=Counter, init=False)
    _kinds: Counter[str] = field(default_factory=Counter, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _wake: threading.Condition = field(init=False)
    _wakeups: int = field(default=0, init=False)  # a waiter's "has something happened since I looked?"
    _watched: bool = field(default=False, init=False)  # one idle thread sleeps until the next job falls due

    def __post_init__(self) -> None:
        limits = [self.per_bank, *self.per_kind.values(), *self.per_bank_of.values()]
        assert all(limit >= 1 for limit in limits)
        self._wake = threading.Condition(self._lock)

    @contextmanager
    def claiming(self) -> Iterator[Full]:
        """Hold the claim lock; yields what is full. Call `take` inside for the job claimed, if any."""
        with self._lock:
            yield self._full()

    def _full(self) -> Full:
        return Full(
            frozenset(bank for bank, running in self._banks.items() if running >= self.bank_limit(bank)),
            frozenset(kind for kind, running in self._kinds.items() if running >= self.per_kind.get(kind, 0) > 0),
        )

    def full_now(self) -> tuple[Full, int]:
        """What is full now, and the wake-up count so far (for `wait`)."""
        with self._lock:
            return self._full(), self._wakeups

    def watch(self) -> bool:
        """Become the thread that sleeps until the next job falls due (True), unless another one is (False: sleep
        until woken). One thread probing and waking per due job, not every idle thread of the process at once."""
        with self._lock:
            if self._watched:
                return False
            self._watched = True
            return True

    def unwatch(self) -> None:
        """The watcher woke (to claim): an idle thread takes over the watch."""
        with self._wake:
            self._watched = False
            self._wake_one()

    def wait(self, wakeups: int, timeout_s: float) -> None:
        """Sleep up to `timeout_s`, or until woken after `full_now` counted `wakeups`: by a slot given back (a job
        its bank's full slots held back may now be taken), by a claim (more may be due: one more thread looks),
        or by the watcher stepping down. No polling while nothing happens."""
        with self._wake:
            self._wake.wait_for(lambda: self._wakeups != wakeups, timeout=timeout_s)

    def _wake_one(self) -> None:
        self._wakeups += 1
        self._wake.notify()

    def bank_limit(self, bank: str) -> int:
        return self.per_bank_of.get(bank, self.per_bank)

    def take(self, bank: str | None, kind: str) -> None:
        """Inside `claiming()`: the claimed job holds its bank's and its kind's slot until `give_back`. Another
        idle thread is woken: if more jobs are due, it takes the next."""
        if bank is not None:
            self._banks[bank] += 1
        self._kinds[kind] += 1
        self._wake_one()

    def give_back(self, bank: str | None, kind: str) -> None:
        with self._wake:
            if bank is not None:
                self._banks[bank] -= 1
            self._kinds[kind] -= 1
            self._wake_one()


def parse_kind_limits(text: str) -> dict[str, int]:
    """`open_virtual_account=2,submit_payout=4` → {kind: limit}; empty text → no per-kind limits."""
    limits: dict[str, int] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        kind, _, number = part.partition("=")
        if not kind.strip() or not number.strip().isdigit() or int(number) < 1:
            raise ValueError(f"任务类型并发上限格式应为 类型=正整数，收到：{part}")
        limits[kind.strip()] = int(number)
    return limits
