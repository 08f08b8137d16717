"""Seeded fault decisions, taken inside the transaction that books what they apply to."""

from __future__ import annotations

from dataclasses import dataclass

from app.tools.banksim.faults import REORDER_HOLD_S, REORDER_SHARE, Stream, draw
from app.tools.banksim.store import Transaction


def happens(tx: Transaction, bank_code: str, seed: int, stream: Stream, rate: float) -> bool:
    """One seeded draw of `stream` against `rate`; a zero rate draws nothing."""
    if rate <= 0:
        return False
    return draw(seed, bank_code, stream, tx.next_draw_index(bank_code, stream)) < rate


def fault_happens(tx: Transaction, bank_code: str, stream: Stream) -> bool:
    """For the request-level faults (`payout_timeout`, `error_5xx`, `freeze_refusal`): one draw against the
    bank's rate."""
    faults = tx.faults(bank_code)
    return happens(tx, bank_code, faults.seed, stream, getattr(faults, stream))


@dataclass(frozen=True)
class NotificationPlan:
    dropped: bool
    duplicated: bool
    ordered: bool
    first_attempt_at: float


def plan_notification(tx: Transaction, bank_code: str, now: float) -> NotificationPlan:
    """What happens to a new notification: dropped, sent twice, held back out of order, delayed."""
    faults = tx.faults(bank_code)
    dropped = happens(tx, bank_code, faults.seed, "drop", faults.drop)
    duplicated = not dropped and happens(tx, bank_code, faults.seed, "duplicate", faults.duplicate)
    held = faults.reorder and happens(tx, bank_code, faults.seed, "reorder", REORDER_SHARE)
    return NotificationPlan(
        dropped=dropped,
        duplicated=duplicated,
        ordered=not faults.reorder,
        first_attempt_at=now + faults.delay_ms / 1000 + (REORDER_HOLD_S if held else 0.0),
    )
