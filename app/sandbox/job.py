"""The `simulate_city` job handler: the console's 运行仿真 run in the sandbox by a worker, reporting its progress
into the job's payload (`app.cities.simulation_runs` queues it and reads it back). The app factory adds it to
the job table; no use case imports it."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.cities.simulation_runs import BUSY_RECHECK_S, KIND, LEASE_S, PROBLEMS_KEPT, of_city
from app.db.models import Job
from app.platform.request_context import job_id as current_job_id
from app.platform.runtime import Runtime
from app.queue.jobs import Defer
from app.sandbox import simulate as simulation
from app.sandbox.replay import replay_city

log = logging.getLogger("cunguan.replay")


class _Recorder:
    """The progress callback: writes (done, total, label) into the job's payload and renews its lease, as
    long as the job is still this worker's."""

    def __init__(self, rt: Runtime, job_id: int, owner: str | None) -> None:
        self.rt, self.job_id, self.owner = rt, job_id, owner

    def update(self, **values: Any) -> None:
        with self.rt.db.uow() as uow:
            job = uow.session.get(Job, self.job_id)
            if job is None or job.status != "running" or job.locked_by != self.owner:
                return  # taken over by another worker (this one was presumed dead): leave the row to it
            now = self.rt.clock()
            job.payload = {**job.payload, **values}  # a new dict: the JSON column sees the change
            job.locked_until = now + timedelta(seconds=LEASE_S)
            job.updated_at = now
            uow.commit()

    def __call__(self, done: int, total: int, label: str) -> None:
        self.update(progress={"done": done, "total": total, "label": label})

    def deals(self, done: int, total: int, label: str) -> None:
        """The replay's progress, counted in real deals."""
        self.update(progress={"done": done, "total": total, "label": label, "unit": "笔真实存管单"})


def _start(rt: Runtime, job_id: int, stem: str) -> str | None:
    """Renew the lease for a long run, after making sure no other simulation of the city is running (a
    dead job retried from the jobs page while another was queued): the owner of the job."""
    with rt.db.uow() as uow:
        session = uow.session
        now = rt.clock()
        other = session.scalar(
            select(Job.id)
            .where(of_city(stem), Job.id != job_id, Job.status == "running", Job.locked_until > now)
            .limit(1)
        )
        if other is not None:
            raise Defer(f"城市 {stem} 的另一个仿真（任务 {other}）正在运行", delay_s=BUSY_RECHECK_S)
        job = session.get(Job, job_id)
        assert job is not None
        job.locked_until = now + timedelta(seconds=LEASE_S)
        uow.commit()
        return job.locked_by


def _replay(rt: Runtime, stem: str, recorder: _Recorder | None) -> simulation.Addenda:
    """After a complete simulation: the city's recent real deals replayed under the same content, stored with it
    (`report["replay"]`); a replay that breaks leaves the simulation as it is and says why."""

    def addenda(content: str) -> dict[str, Any]:
        try:
            return {"replay": replay_city(rt, stem, content, progress=recorder.deals if recorder else None)}
        except Exception as error:  # the simulation's verdict stands whatever the replay meets
            log.warning("replay of %s failed", stem, exc_info=True)
            return {"replay": {"ok": False, "problems": [f"重放中断：{error!r}"[:300]], "deals": [], "count": 0}}

    return addenda


def simulate_city(rt: Runtime, payload: dict[str, Any]) -> None:
    """The job handler: run the simulation (and, for every product, the replay of real deals); its outcome is
    stored by `simulate`."""
    stem = payload["city"]
    job_id = current_job_id.get()  # set by the worker; None when called directly (nothing to report to)
    recorder = _Recorder(rt, job_id, _start(rt, job_id, stem)) if job_id is not None else None
    product = payload.get("product")
    addenda = _replay(rt, stem, recorder) if product is None else None
    # a refusal (the version is gone) ends the job dead with its message; a crash is tried once more
    report = simulation.simulate(
        rt, stem, product, payload.get("version"), payload["run_by"], recorder, addenda=addenda
    )
    if recorder is not None:
        recorder.update(
            outcome={
                "ok": report["ok"],
                "target": report["target"],
                "stored": report.get("resolved_sha256") is not None,  # an invalid config stores nothing
                "problems": [str(p) for p in report["problems"][:PROBLEMS_KEPT]],
                "problem_count": len(report["problems"]),
            }
        )


JOBS = {KIND: simulate_city}
