"""A cumulative Prometheus histogram kept in process memory (thread-safe)."""

from __future__ import annotations

import threading
from collections.abc import Iterable


class Histogram:
    """A cumulative Prometheus histogram kept in this process (thread-safe)."""

    def __init__(self, buckets: Iterable[float]) -> None:
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * len(self.buckets)
        self._count = 0
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self._count += 1
            self._sum += value
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    self._counts[index] += 1

    def snapshot(self) -> tuple[list[tuple[float, int]], int, float]:
        with self._lock:
            return list(zip(self.buckets, self._counts, strict=True)), self._count, self._sum
