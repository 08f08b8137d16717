"""The platform's workers in the fault simulation: jobs run through the real `run_one`, workers that crash
holding a job or stall and finish it late, and the periodic maintenance and due timers."""

from __future__ import annotations

from sqlalchemy import select

from app.db.models import Job
from app.deals.timers import fire_due_timers
from app.ledger.maintenance import maintain
from app.platform.errors import CunguanError
from app.queue import jobs
from app.queue.worker import _record as record
from app.queue.worker import run_one
from app.tools.vopr.fake_bank import ProcessDied
from app.tools.vopr.world import SeedWorld


class Workers(SeedWorld):
    """Two worker processes, with crashes and stalls."""

    def _work(self, worker: str, healthy: bool = False) -> bool:
        rt = self.rt_workers[worker]
        if not healthy and self.rng.random() < self.p_crash:
            return self._crash(worker)
        ran = run_one(rt, worker)
        if ran:
            self._count("jobs_run")
            self._check_job_errors()
        return ran

    def _crash(self, worker: str) -> bool:
        """The worker process dies holding a job: before its bank call, right after the bank answered (before
        anything is committed), or after the job's work (nothing recorded). Or it stalls (a long GC pause, a
        frozen VM) and comes back later, after its lease expired and another worker may have run the job."""
        rt = self.rt_workers[worker]
        with rt.db.uow() as uow:
            job = jobs.claim(uow.session, f"{worker}-crashed", now=rt.clock())
            if job is None:
                return False
            uow.commit()
            job_id, kind, payload = job.id, job.kind, dict(job.payload)
        mode = self.rng.choice(["before", "mid", "after", "stall"])
        if mode == "stall":
            self.stalled.append((worker, job_id, kind, payload))
        elif mode in ("mid", "after"):
            self.bank.die_after_next_call = mode == "mid"
            try:
                rt.jobs[kind](rt, payload)
            except (CunguanError, ProcessDied):
                pass  # whatever happened, the process is gone before it records anything
            finally:
                self.bank.die_after_next_call = False
        self._note(f"{worker} {'stalls' if mode == 'stall' else 'crashes'} holding job {job_id} {kind} ({mode})")
        self._count(f"crash_{mode}")
        return True

    def _resume_stalled(self) -> None:
        """A stalled worker wakes up and finishes its job as if nothing happened (as `run_one` would)."""
        if not self.stalled:
            return
        worker, job_id, kind, payload = self.stalled.pop(self.rng.randrange(len(self.stalled)))
        rt = self.rt_workers[worker]
        outcome: tuple[str, bool] | None = None
        try:
            rt.jobs[kind](rt, payload)
        except jobs.Defer as error:
            outcome = (f"{error.code}: {error.message}", True)
        except CunguanError as error:
            outcome = (f"{error.code}: {error.message}", True)
        record(rt, job_id, outcome)
        self._note(f"{worker} wakes up and finishes job {job_id} {kind}: {outcome[0] if outcome else 'done'}")
        self._count("stalls_resumed")

    def _check_job_errors(self) -> None:
        """run_one keeps a job that raised an unexpected exception for a retry; here that is a bug found."""
        with self.rt_web.db.uow() as uow:
            for job in uow.session.scalars(select(Job).where(Job.last_error.like("Traceback%"))):
                if self.seen_tracebacks.get(job.id) != job.attempts:
                    self.seen_tracebacks[job.id] = job.attempts
                    self._fail(f"job {job.id} {job.kind} raised: {job.last_error}")

    def _maintain(self, worker: str) -> None:
        rt = self.rt_workers[worker]
        maintain(rt)
        fire_due_timers(rt)
