"""Fault settings per bank, for tests and demos, and the seeded draws that decide each fault.

A draw is a pure function of (seed, bank, stream, n), where n counts the draws of that stream since
the faults were last set; the counters live in the simulator's database. So for a given seed and
sequence of requests every decision is the same, across processes and restarts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from typing import Any, Literal

from app.tools.banksim.errors import malformed

Stream = Literal["drop", "duplicate", "reorder", "payout_timeout", "error_5xx", "payout_failure", "freeze_refusal"]
REORDER_SHARE = 0.5  # with reorder on, one notification in two (seeded) is held back
REORDER_HOLD_S = 1.0  # ... for this long, so later ones overtake it
DEFAULT_TIMEOUT_HOLD_MS = 12_000  # longer than the platform's 10 s read timeout
_RATES = ("drop", "duplicate", "payout_timeout", "error_5xx", "payout_failure", "freeze_refusal")


@dataclass(frozen=True)
class FaultSettings:
    drop: float = 0.0  # share of notifications never sent
    duplicate: float = 0.0  # share of notifications sent twice (same notification_id and body)
    reorder: bool = False  # notifications no longer kept in order per notify_url; some held back
    delay_ms: int = 0  # every notification waits this long before its first attempt
    payout_timeout: float = 0.0  # share of accepted payouts (booked!) answered only after timeout_hold_ms
    error_5xx: float = 0.0  # share of platform requests refused with 503 before anything is booked
    payout_failure: float = 0.0  # share of payouts the payee's bank refuses when they settle (funds stay put)
    freeze_refusal: float = 0.0  # share of new freeze requests the bank refuses (the customer's money is short)
    timeout_hold_ms: int = DEFAULT_TIMEOUT_HOLD_MS
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultSettings:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise malformed("未知的故障设置项", details={"unknown": unknown})
        settings = cls(**data)
        problems = {name: "必须是 0 到 1 之间的比例" for name in _RATES if not _is_rate(getattr(settings, name))}
        for name in ("delay_ms", "timeout_hold_ms", "seed"):
            if not _is_whole(getattr(settings, name)):
                problems[name] = "必须是非负整数"
        if not isinstance(settings.reorder, bool):
            problems["reorder"] = "必须是 true 或 false"
        if problems:
            raise malformed("故障设置不正确", details=problems)
        return settings

    @property
    def active(self) -> bool:
        return self != FaultSettings(timeout_hold_ms=self.timeout_hold_ms, seed=self.seed)


def _is_rate(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def draw(seed: int, bank_code: str, stream: Stream, n: int) -> float:
    """The n-th uniform number in [0, 1) of one stream."""
    digest = hashlib.sha256(f"{seed}|{bank_code}|{stream}|{n}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
