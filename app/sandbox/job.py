"""The console's 运行仿真 as a worker job: a full city takes a minute or more, far too long for a web request.

The button enqueues a `simulate_city` job (one queued or running per city); the worker runs
`simulation.simulate`, which stores the outcome in `config_simulations` exactly as `flask city simulate`
does (approval reads it there). While it runs, the job's payload carries its progress
(`{"done", "total", "label"}`, in paths) and, when it ends, a short outcome; the city page reads both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.cities.publishing import validated
from app.cities.sources import open_version
from app.db.models import Job
from app.domain.problems import CityConfigInvalid
from app.platform.errors import ValidationError
from app.platform.request_context import job_id as current_job_id
from app.platform.runtime import Runtime
from app.queue.jobs import Defer, enqueue

KIND = "simulate_city"
ACTIVE = ("pending", "running")
# A product may take minutes: each progress report renews the lease for this long, so that no other worker
# takes the job over meanwhile (a dead worker's simulation is taken over after this long).
LEASE_S = 600.0
MAX_ATTEMPTS = 2  # a simulation is costly: one more try after a crash (a lost connection), then it stays dead
BUSY_RECHECK_S = 30.0
PROBLEMS_KEPT = 20


class SimulationBusy(ValidationError):
    code = "SIMULATION_RUNNING"


@dataclass(frozen=True)
class SimulationRun:
    """One `simulate_city` job as the city page shows it."""

    job_id: int
    status: str  # the job's: pending, running, done, dead
    version: int | None
    product: str | None
    run_by: str
    done: int
    total: int
    label: str
    queued_at: datetime
    updated_at: datetime
    error: str | None
    outcome: dict[str, Any] | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def target(self) -> str:
        what = f"第 {self.version} 版" if self.version is not None else "工作区文件"
        return what + (f" · 仅 {self.product}" if self.product else "")


def _of_city(stem: str) -> ColumnElement[bool]:
    return (Job.kind == KIND) & (Job.payload["city"].as_string() == stem)


def _run(job: Job) -> SimulationRun:
    payload = job.payload
    progress = payload.get("progress") or {}
    error = None
    if job.status == "dead" and job.last_error:  # the last line: a traceback's exception, or "CODE: message"
        lines = [line for line in job.last_error.strip().splitlines() if line.strip()]
        error = lines[-1][:300] if lines else None
    return SimulationRun(
        job_id=job.id,
        status=job.status,
        version=payload.get("version"),
        product=payload.get("product"),
        run_by=str(payload.get("run_by", "")),
        done=int(progress.get("done", 0)),
        total=int(progress.get("total", 0)),
        label=str(progress.get("label", "")),
        queued_at=job.created_at,
        updated_at=job.updated_at,
        error=error,
        outcome=payload.get("outcome"),
    )


def latest_run(session: Session, stem: str) -> SimulationRun | None:
    """The city's latest simulation job, whatever its status."""
    job = session.scalar(select(Job).where(_of_city(stem)).order_by(Job.id.desc()).limit(1))
    return _run(job) if job is not None else None


def active_run(session: Session, stem: str) -> SimulationRun | None:
    job = session.scalar(select(Job).where(_of_city(stem), Job.status.in_(ACTIVE)).order_by(Job.id).limit(1))
    return _run(job) if job is not None else None


def _busy(run: SimulationRun) -> SimulationBusy:
    state = "正在排队" if run.status == "pending" else f"正在运行（{run.done}/{run.total}）"
    return SimulationBusy(
        f"本城市已有一个仿真{state}（{run.target}，{run.run_by} 提交），请等它完成后再运行",
        details={"job_id": run.job_id},
    )


def request_simulation(rt: Runtime, stem: str, product: str | None, run_by: str) -> SimulationRun:
    """Queue a simulation of the city's version under work (else its working file), or refuse: unknown city or
    product, a config that does not validate, or a simulation of the city already queued or running."""
    from app.sandbox.simulate import target

    working = target(rt, stem, None)  # NotFound: no such city (before our transaction: SQLite has one writer)
    with rt.db.uow() as uow:
        session = uow.session
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            # two clicks at once: the second waits here for the first's commit, then sees its job
            session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"{KIND}:{stem}"))))
        running = active_run(session, stem)
        if running is not None:
            raise _busy(running)
        draft = open_version(session, stem)
        version = draft.version if draft is not None else None
        content = draft.content if draft is not None else working.content
        try:
            _, city = validated(rt, session, stem, content)
        except CityConfigInvalid as invalid:
            raise ValidationError(f"{invalid.message}，请先修正再仿真", code=invalid.code) from invalid
        if product is not None and product not in city.products:
            raise ValidationError(f"城市配置 {stem} 没有业务 {product}", code="UNKNOWN_PRODUCT")
        payload = {
            "city": stem,
            "version": version,
            "product": product,
            "run_by": run_by,
            "progress": {"done": 0, "total": 0, "label": ""},
        }
        job = enqueue(session, KIND, payload, now=rt.clock())
        job.max_attempts = MAX_ATTEMPTS
        uow.commit()
        return _run(job)


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


def _start(rt: Runtime, job_id: int, stem: str) -> str | None:
    """Renew the lease for a long run, after making sure no other simulation of the city is running (a
    dead job retried from the jobs page while another was queued): the owner of the job."""
    with rt.db.uow() as uow:
        session = uow.session
        now = rt.clock()
        other = session.scalar(
            select(Job.id)
            .where(_of_city(stem), Job.id != job_id, Job.status == "running", Job.locked_until > now)
            .limit(1)
        )
        if other is not None:
            raise Defer(f"城市 {stem} 的另一个仿真（任务 {other}）正在运行", delay_s=BUSY_RECHECK_S)
        job = session.get(Job, job_id)
        assert job is not None
        job.locked_until = now + timedelta(seconds=LEASE_S)
        uow.commit()
        return job.locked_by


def simulate_city(rt: Runtime, payload: dict[str, Any]) -> None:
    """The job handler (`HANDLERS["simulate_city"]`): run the simulation; its outcome is stored by `simulate`."""
    from app.sandbox.simulate import simulate

    stem = payload["city"]
    job_id = current_job_id.get()  # set by the worker; None when called directly (nothing to report to)
    recorder = _Recorder(rt, job_id, _start(rt, job_id, stem)) if job_id is not None else None
    # a refusal (the version is gone) ends the job dead with its message; a crash is tried once more
    report = simulate(rt, stem, payload.get("product"), payload.get("version"), payload["run_by"], recorder)
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
