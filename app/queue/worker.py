"""The job worker: claims due jobs with a lease, runs them through the services, records the outcome."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from contextvars import copy_context
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from app.audit import chain as audit_chain
from app.audit import checkpoints as audit_checkpoints
from app.bank_inbox.inbox import process_inbox
from app.bank_inbox.store import INBOX_MODE, processing_mode, prune_nonces
from app.banks.settings import opening_slots
from app.db.models import Job
from app.deals.timers import fire_due_timers
from app.figures import totals as figure_totals
from app.ledger.maintenance import maintain
from app.platform.errors import CunguanError
from app.platform.request_context import bind_context
from app.platform.runtime import Runtime
from app.queue import jobs
from app.queue.jobs import Retry
from app.queue.slots import Full, Slots

log = logging.getLogger("cunguan.worker")

# After a database error outside a job's handler (a dropped connection, a database restart), the loop waits
# RECONNECT_FIRST_S, doubling up to RECONNECT_MAX_S while the database stays away, then tries again: the
# pool replaces the dead connections. The worker never exits for it.
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 30.0
IDLE_SHORTEST_S = 0.02  # a due job another worker or a full bank slot holds: look again this soon
FOLLOWER_WAIT_S = 2.0  # an idle thread that is not the watcher is woken by events; this only bounds a stop's wait


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def run_one(rt: Runtime, worker: str, *, lease_s: float = jobs.LEASE_S, slots: Slots | None = None) -> bool:
    """Claim and run one due job (its lease expires after `lease_s` if this process dies). With `slots`, a job
    of a bank or kind whose slots are all taken by this process's other threads is left for later. Returns
    False when nothing was due (or nothing this thread may take)."""
    with rt.db.uow() as uow, slots.claiming() if slots else nullcontext(jobs.NOTHING_FULL) as full:
        job = jobs.claim(uow.session, worker, now=rt.clock(), lease_s=lease_s, full=full)
        if job is None:
            return False
        uow.commit()
        # handlers see which run this is: payload["attempt"] (1 for the first; more after a retry or a dead worker)
        job_id, kind, bank, payload = job.id, job.kind, job.bank_code, {**job.payload, "attempt": job.attempts}
        if slots:
            slots.take(bank, kind)
    try:
        _run(rt, job_id, kind, payload)
    finally:
        if slots:
            slots.give_back(bank, kind)
    return True


def _run(rt: Runtime, job_id: int, kind: str, payload: dict[str, Any]) -> None:
    log.info("job started", extra={"job_id": job_id, "kind": kind})
    outcome: tuple[str, bool] | None = None  # (error text, retry)
    try:
        with bind_context(job_id=job_id):  # in a copy of the context: what a handler binds ends with the job
            copy_context().run(rt.jobs[kind], rt, payload)
    except jobs.Defer as error:
        _defer(rt, job_id, error)
        return
    except Retry as error:
        outcome = (f"{error.code}: {error.message}", True)
    except CunguanError as error:
        outcome = (f"{error.code}: {error.message} {error.details!r}", False)
    except Exception:  # a bug or a lost database connection: keep the job, try again later
        outcome = (traceback.format_exc(), True)
    _record(rt, job_id, outcome)


def _defer(rt: Runtime, job_id: int, error: jobs.Defer) -> None:
    with rt.db.uow() as uow:
        job = uow.session.get(Job, job_id)
        assert job is not None
        jobs.defer(uow.session, job, f"{error.code}: {error.message}", now=rt.clock(), delay_s=error.delay_s)
        uow.commit()
    log.info("job deferred", extra={"job_id": job_id, "delay_s": error.delay_s, "reason": error.message})


def _record(rt: Runtime, job_id: int, outcome: tuple[str, bool] | None) -> None:
    with rt.db.uow() as uow:
        job = uow.session.get(Job, job_id)
        assert job is not None
        if outcome is None:
            jobs.complete(uow.session, job, now=rt.clock())
            log.info("job done", extra={"job_id": job_id, "kind": job.kind})
        else:
            jobs.fail(uow.session, job, outcome[0], now=rt.clock(), retry=outcome[1])
            log.warning(
                "job failed", extra={"job_id": job_id, "kind": job.kind, "status": job.status, "error": outcome[0]}
            )
        uow.commit()


MAINTENANCE: tuple[tuple[str, Callable[[Runtime], object]], ...] = (
    ("ledger maintenance", maintain),
    ("figure folding", figure_totals.fold),  # the console's running totals (app.figures.totals)
    ("workflow timers", fire_due_timers),
    ("nonce pruning", prune_nonces),
    ("audit chaining", audit_chain.chain),  # entries are written unchained: the chain follows within a round
    ("audit checkpoint", audit_checkpoints.maintain),  # every CHECKPOINT_EVERY_S when the chain grew
)


def _maintain(rt: Runtime) -> None:
    for name, task in MAINTENANCE:
        try:
            task(rt)
        except Exception:  # a lost connection or a race with another worker: the next round retries
            log.warning(f"{name} failed", extra={"error": traceback.format_exc(limit=3)})


def _process_inbox(rt: Runtime) -> bool:
    """With CUNGUAN_CALLBACK_PROCESSING=inbox, process one batch of acknowledged bank callbacks; True when
    it found work (so the loop does not sleep). A failure is logged; the rows stay due for the next round."""
    if processing_mode() != INBOX_MODE:
        return False
    try:
        batch = process_inbox(rt)
    except Exception:  # a lost connection: nothing of the batch was committed, the next round retries
        log.warning("inbox processing failed", extra={"error": traceback.format_exc(limit=3)})
        return False
    if batch.processed or batch.failed:
        log.info("inbox batch processed", extra={"processed": batch.processed, "failed": batch.failed})
    return batch.processed + batch.failed > 0


def run_worker(
    rt: Runtime,
    *,
    should_stop: Callable[[], bool],
    poll_s: float = 0.5,
    burst: bool = False,
    maintenance_s: float = 2.0,
    lease_s: float = jobs.LEASE_S,
    slots: Slots | None = None,
) -> int:
    """Run jobs until `should_stop()` (or, with burst, until none is due). Returns how many ran.
    Every `maintenance_s` the ledger is maintained (hot buffers folded, expired holds voided) and due
    workflow timers of deals fire.

    `should_stop` is polled rather than waited on: a signal handler may flip it at any moment, and
    waiting on a threading.Event that the handler sets can deadlock the main thread.
    """
    worker = worker_id()
    ran = 0
    next_maintenance = 0.0
    outage = _Outage()
    while not should_stop():
        if time.monotonic() >= next_maintenance:
            _maintain(rt)
            next_maintenance = time.monotonic() + maintenance_s
        try:
            inbox_busy = _process_inbox(rt)  # one batch per round, so that jobs are not starved by callbacks
            job_ran = run_one(rt, worker, lease_s=lease_s, slots=slots)
            if not (job_ran or inbox_busy or burst):
                _idle(rt, poll_s, slots)
        except SQLAlchemyError as error:  # the database went away: wait, reconnect, go on (a job keeps its lease)
            _sleep(outage.failed(error), should_stop)
            continue
        outage.recovered()
        if job_ran:
            ran += 1
            continue
        if burst and not inbox_busy:
            break
    return ran


def _idle(rt: Runtime, poll_s: float, slots: Slots | None) -> None:
    """Nothing this thread may take is due. One thread of the process (the watcher) sleeps until the next job
    it may take falls due (at most `poll_s`); the others until something happens (`Slots.wait`), polling
    nothing meanwhile."""
    if slots is None:
        time.sleep(_idle_s(rt, poll_s, jobs.NOTHING_FULL))
        return
    full, wakeups = slots.full_now()
    if not slots.watch():
        slots.wait(wakeups, max(poll_s, FOLLOWER_WAIT_S))
        return
    try:
        slots.wait(wakeups, _idle_s(rt, poll_s, full))
    finally:
        slots.unwatch()


def _idle_s(rt: Runtime, poll_s: float, full: Full) -> float:
    """Nothing ran: sleep until the next job this thread may take falls due, at most `poll_s`."""
    with rt.db.uow() as uow:
        return jobs.wait_for_next_s(
            uow.session, now=rt.clock(), shortest_s=IDLE_SHORTEST_S, longest_s=poll_s, full=full
        )


class _Outage:
    """Backoff while the database is unreachable; logs the first failure, each retry and the recovery."""

    def __init__(self) -> None:
        self.failures = 0
        self.delay_s = RECONNECT_FIRST_S

    def failed(self, error: SQLAlchemyError) -> float:
        """Log the failure (the error's class only: its text carries SQL and parameters); the wait before retrying."""
        self.failures += 1
        delay = self.delay_s
        self.delay_s = min(delay * 2, RECONNECT_MAX_S)
        log.warning(
            "database unavailable, reconnecting",
            extra={"error": type(error).__name__, "failures": self.failures, "retry_in_s": delay},
        )
        return delay

    def recovered(self) -> None:
        if self.failures:
            log.info("database reachable again", extra={"failures": self.failures})
        self.failures = 0
        self.delay_s = RECONNECT_FIRST_S


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    """Sleep, waking early when asked to stop."""
    deadline = time.monotonic() + seconds
    while not should_stop() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))


def run_workers(
    rt: Runtime,
    threads: int,
    *,
    should_stop: Callable[[], bool],
    poll_s: float = 0.5,
    burst: bool = False,
    lease_s: float = jobs.LEASE_S,
    per_bank: int = 2,
    per_kind: Mapping[str, int] | None = None,
) -> int:
    """`threads` worker loops in this process (each claims its own jobs), running at most `per_bank` jobs of
    one bank (more for a bank whose opening limit needs more sends in flight: `opening_slots`) and
    `per_kind[kind]` of one kind at once; returns how many jobs ran."""
    slots = Slots(per_bank, dict(per_kind or {}), opening_slots(rt, per_bank))
    if threads == 1:
        return run_worker(rt, should_stop=should_stop, poll_s=poll_s, burst=burst, lease_s=lease_s, slots=slots)
    counts: list[int] = []

    def loop() -> None:
        counts.append(run_worker(rt, should_stop=should_stop, poll_s=poll_s, burst=burst, lease_s=lease_s, slots=slots))

    workers = [threading.Thread(target=loop, name=f"worker-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts)
