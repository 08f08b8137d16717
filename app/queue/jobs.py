"""Job (outbox) table operations: enqueue in the caller's transaction, claim with a lease, retry with backoff."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, true, update
from sqlalchemy.orm import Session

from app.db.models import Job
from app.platform.errors import CunguanError
from app.queue.slots import Full

BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 600.0
NOTHING_FULL = Full()
LEASE_S = 60.0  # a claimed job whose worker died is due again after this long (`flask worker --lease`)


class Retry(CunguanError):
    """Try the job again later (with backoff); not a bug, the world is not ready yet."""

    code = "RETRY"


class Defer(CunguanError):
    """Not now, and not a failure: run the job again after `delay_s` without spending an attempt
    (a rate limit, a quota, a dependency not ready)."""

    code = "DEFERRED"

    def __init__(self, message: str, *, delay_s: float, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details={**(details or {}), "delay_s": round(delay_s, 3)})
        self.delay_s = delay_s


def job_row(
    kind: str, payload: dict[str, Any], now: datetime, delay_s: float = 0.0, *, bank_code: str | None = None
) -> dict[str, Any]:
    """A new job's row, due `delay_s` after `now`: what `enqueue` adds, and what a bulk insert writes for
    each of many jobs (`max_attempts` is the column's default). A job that calls a bank names it
    (`bank_code`): workers limit how many of one bank's jobs run at once (app/queue/slots.py)."""
    assert delay_s >= 0, "a job is never due before it is queued"
    return {
        "kind": kind,
        "payload": payload,
        "bank_code": bank_code,
        "status": "pending",
        "attempts": 0,
        "run_after": now + timedelta(seconds=delay_s),
        "created_at": now,
        "updated_at": now,
    }


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    delay_s: float = 0.0,
    bank_code: str | None = None,
) -> Job:
    """Add a job to the caller's transaction: it exists exactly when the state change that wants it commits.
    A job that calls a bank names it (`bank_code`)."""
    job = Job(**job_row(kind, payload, now, delay_s, bank_code=bank_code))
    session.add(job)
    session.flush()
    return job


def backoff_s(attempts: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [base/2, min(cap, base * 2^(attempts-1))]."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))
    return (rng or random).uniform(min(ceiling, BACKOFF_BASE_S / 2), ceiling)


def claim_queries(now: datetime, full: Full = NOTHING_FULL) -> list[tuple[ColumnElement[bool], Select[tuple[int]]]]:
    """What a claim looks for, in turn, each with its query: running jobs whose lease expired (their worker
    died), then pending ones, oldest first, skipping the banks and kinds whose slots are `full`. Each query is
    one range read of an index in its order (ix_jobs_status_locked_until, ix_jobs_status_run_after), so a claim
    costs the same with a thousand jobs queued or a hundred thousand."""
    skip = _not_full(full)
    expired = (Job.status == "running") & (Job.locked_until < now) & (Job.run_after <= now) & skip
    pending = (Job.status == "pending") & (Job.run_after <= now) & skip
    return [
        (due, select(Job.id).where(due).order_by(*oldest_first).limit(1))
        for due, oldest_first in ((expired, (Job.locked_until, Job.id)), (pending, (Job.run_after, Job.id)))
    ]


def _not_full(full: Full) -> ColumnElement[bool]:
    """Jobs not of a bank or kind whose slots are all taken."""
    skip: ColumnElement[bool] = true()
    if full.banks:
        skip = skip & (Job.bank_code.is_(None) | Job.bank_code.not_in(sorted(full.banks)))
    if full.kinds:
        skip = skip & Job.kind.not_in(sorted(full.kinds))
    return skip


def claim(
    session: Session, worker_id: str, *, now: datetime, lease_s: float = LEASE_S, full: Full = NOTHING_FULL
) -> Job | None:
    """Take one due job (see claim_queries). Commit afterwards."""
    postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
    for due, query in claim_queries(now, full):
        job_id = session.scalar(query.with_for_update(skip_locked=True) if postgres else query)
        if job_id is not None:
            return _take(session, job_id, due, worker_id, now=now, lease_s=lease_s)
    return None


def wait_for_next_s(
    session: Session, *, now: datetime, shortest_s: float, longest_s: float, full: Full = NOTHING_FULL
) -> float:
    """How long a worker with nothing to do may sleep: until the next pending job it may take falls due (not of a
    bank or kind whose slots are `full`: a slot given back wakes the worker, `Slots.wait_for_release`), between
    `shortest_s` (one is due but another worker is taking it) and `longest_s`. A job deferred to a bank's next
    free place so starts on time, not up to a poll later. The first entry of ix_jobs_status_run_after: one index
    probe at any queue length (past the full banks' due jobs when some are full)."""
    next_due = session.scalar(select(func.min(Job.run_after)).where(Job.status == "pending", _not_full(full)))
    if next_due is None:
        return longest_s
    return min(max((next_due - now).total_seconds(), shortest_s), longest_s)


def _take(
    session: Session, job_id: int, due: ColumnElement[bool], worker_id: str, *, now: datetime, lease_s: float
) -> Job | None:
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, due)
        .values(
            status="running",
            locked_by=worker_id,
            locked_until=now + timedelta(seconds=lease_s),
            attempts=Job.attempts + 1,
            updated_at=now,
        )
    )
    if claimed.rowcount != 1:  # another worker took it between our select and update
        return None
    return session.get(Job, job_id, populate_existing=True)


def complete(session: Session, job: Job, *, now: datetime) -> None:
    job.status = "done"
    job.locked_by = job.locked_until = None
    job.last_error = None
    job.updated_at = now


def fail(session: Session, job: Job, error: str, *, now: datetime, retry: bool = True) -> None:
    """Schedule another attempt with backoff, or mark the job dead when out of attempts or not retryable."""
    job.last_error = error[:2000]
    job.locked_by = job.locked_until = None
    job.updated_at = now
    if retry and job.attempts < job.max_attempts:
        job.status = "pending"
        job.run_after = now + timedelta(seconds=backoff_s(job.attempts))
    else:
        job.status = "dead"


def defer(session: Session, job: Job, reason: str, *, now: datetime, delay_s: float) -> None:
    """Put the job back for later; the attempt the claim counted is given back."""
    job.status = "pending"
    job.locked_by = job.locked_until = None
    job.attempts = max(0, job.attempts - 1)
    job.last_error = reason[:2000]
    job.run_after = now + timedelta(seconds=delay_s)
    job.updated_at = now
