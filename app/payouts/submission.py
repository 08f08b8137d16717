"""When a payout goes to the bank: queued once its money is held (and approved), deferred while its deal is
frozen, woken when it is unfrozen, and marked submitted (with a watchdog) once the bank has it."""

from __future__ import annotations

import logging
import math
import os
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Deal, Job, Payout
from app.payouts import trail
from app.payouts.status import PayoutStatus
from app.queue.jobs import enqueue

RECHECK_S = 300.0  # a frozen deal's payout submission looks again this often (unfreezing wakes it at once)
# no `payout_result` this long after the bank accepted a payout: ask the bank (then again this often while it
# is still processing). Well beyond a normal settlement, so the watchdog rarely finds anything to do.
PAYOUT_CHECK_DELAY_S = 600.0
PAYOUT_CHECK_DELAY_ENV = "CUNGUAN_PAYOUT_CHECK_DELAY_S"  # overrides it (seconds), e.g. for short chaos runs

log = logging.getLogger("cunguan.bank_jobs")


def sent_to_bank(payout: Payout) -> bool:
    """Whether the bank may know the payout, so a result for it may be true: past approval and pending, only
    once `submit_payout` has recorded that it sends it (before the bank call: the worker may die after the bank
    accepted). A payout awaiting approval, or pending and never sent, can have no result at the bank."""
    if payout.status in (PayoutStatus.AWAITING_APPROVAL, PayoutStatus.PENDING):
        return payout.sent_at is not None
    return True


def mark_sent(payout: Payout, now: datetime) -> None:
    """`submit_payout` is about to call the bank (committed before the call; the first attempt's time stays)."""
    assert payout.status == PayoutStatus.PENDING, payout.status
    if payout.sent_at is None:
        payout.sent_at = now


def queue_submission(session: Session, payout: Payout, now: datetime) -> None:
    """The bank call of a pending payout, as a job in the caller's transaction."""
    assert payout.status == PayoutStatus.PENDING, payout.status
    enqueue(session, "submit_payout", {"payout_id": payout.payout_id}, now=now, bank_code=payout.bank_code)


def release_approved(session: Session, payout: Payout, now: datetime) -> None:
    """The last approval it needed: the payout goes to the bank."""
    assert payout.status == PayoutStatus.AWAITING_APPROVAL, payout.status
    payout.status = PayoutStatus.PENDING
    queue_submission(session, payout, now)


def mark_submitted(session: Session, payout: Payout, bank_reference: str, now: datetime) -> None:
    """The bank has the payout (a pending one; anything else is left as it is). In the same transaction: a
    watchdog (`check_payout`) that asks the bank if its `payout_result` has not come by then."""
    if payout.status != PayoutStatus.PENDING:
        return
    before = trail.payout_state(payout)
    payout.status = PayoutStatus.SUBMITTED
    payout.bank_reference = bank_reference
    payout.updated_at = now
    check = {"payout_id": payout.payout_id}
    enqueue(session, "check_payout", check, now=now, delay_s=payout_check_delay_s(), bank_code=payout.bank_code)
    trail.record(session, payout, "submitted", f"bank:{payout.bank_code}", now, before=before)


def payout_check_delay_s() -> float:
    """PAYOUT_CHECK_DELAY_S, or CUNGUAN_PAYOUT_CHECK_DELAY_S when set. Read on each call (as the callback processing
    mode is). A bad value is logged and ignored: it must not fail the payout the bank has just accepted."""
    raw = os.environ.get(PAYOUT_CHECK_DELAY_ENV, "").strip()
    if not raw:
        return PAYOUT_CHECK_DELAY_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        log.warning("bad payout check delay ignored", extra={"setting": PAYOUT_CHECK_DELAY_ENV, "value": raw[:40]})
        return PAYOUT_CHECK_DELAY_S
    return value


def frozen_payout(session: Session, payout_id: str) -> bool:
    """Whether the payout belongs to a frozen deal (asked by `submit_payout` before it calls the bank)."""
    frozen_at = session.scalar(
        select(Deal.frozen_at).join(Payout, Payout.deal_id == Deal.id).where(Payout.payout_id == payout_id)
    )
    return frozen_at is not None


def wake_submissions(session: Session, deal_id: int, now: datetime) -> int:
    """The deal was unfrozen: its deferred payout submissions are due now. Returns how many woke up."""
    payout_ids = list(session.scalars(select(Payout.payout_id).where(Payout.deal_id == deal_id)))
    waiting = session.scalars(
        select(Job).where(
            Job.kind == "submit_payout",
            Job.status == "pending",
            Job.run_after > now,
            Job.payload["payout_id"].as_string().in_(payout_ids),
        )
    ).all()
    for job in waiting:
        job.run_after = now
    return len(waiting)
