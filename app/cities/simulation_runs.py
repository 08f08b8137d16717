"""The console's 运行仿真 as seen from the app: a full city takes a minute or more, far too long for a web request.

The button enqueues a `simulate_city` job (one queued or running per city); the worker runs it through the
handler the app factory took from the sandbox (`app.sandbox.job`, outside the core: nothing here imports it),
which stores the outcome in `config_simulations` exactly as `flask city simulate` does (approval reads it
there). While it runs, the job's payload carries its progress (`{"done", "total", "label"}`, in paths; then
`"unit"` says it counts real deals, while the draft is replayed against them: `app.sandbox.replay`) and,
when it ends, a short outcome; the city page reads both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.cities.publishing import validated
from app.cities.sources import DbVersions, open_version
from app.db.config_models import CityConfigVersion
from app.db.models import Job
from app.domain.problems import CityConfigInvalid
from app.platform.config import ROOT
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime
from app.queue.jobs import enqueue

KIND = "simulate_city"
ACTIVE = ("pending", "running")
# A product may take minutes: each progress report renews the lease for this long, so that no other worker
# takes the job over meanwhile (a dead worker's simulation is taken over after this long).
LEASE_S = 600.0
MAX_ATTEMPTS = 2  # a simulation is costly: one more try after a crash (a lost connection), then it stays dead
BUSY_RECHECK_S = 30.0
PROBLEMS_KEPT = 20


@dataclass(frozen=True)
class Target:
    """What is simulated: the raw content of `stem` (a version, the draft under work or the working file)."""

    stem: str
    content: str
    label: str


def target(rt: Runtime, stem: str, version: int | None) -> Target:
    if version is not None:
        with rt.db.uow() as uow:
            row = uow.session.query(CityConfigVersion).filter_by(city_code=stem, version=version).one_or_none()
            if row is None:
                raise NotFound(f"城市配置 {stem} 没有第 {version} 版", code="CONFIG_VERSION_NOT_FOUND")
            return Target(stem, row.content, f"第 {version} 版")
    with rt.db.uow() as uow:
        draft = open_version(uow.session, stem)
        if draft is not None:
            return Target(stem, draft.content, f"第 {draft.version} 版（{draft.status}）")
    from app.cities.versions import GitVersions

    content = DbVersions(rt.db, GitVersions(ROOT)).draft(stem)
    if content is None:
        raise NotFound(f"城市配置 {stem} 不存在", code="UNKNOWN_CITY")
    return Target(stem, content, "工作区文件")


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
    unit: str  # what done/total count: paths, then (the replay of real deals) deals
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


def of_city(stem: str) -> ColumnElement[bool]:
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
        unit=str(progress.get("unit", "条路径")),
        queued_at=job.created_at,
        updated_at=job.updated_at,
        error=error,
        outcome=payload.get("outcome"),
    )


def latest_run(session: Session, stem: str) -> SimulationRun | None:
    """The city's latest simulation job, whatever its status."""
    job = session.scalar(select(Job).where(of_city(stem)).order_by(Job.id.desc()).limit(1))
    return _run(job) if job is not None else None


def active_run(session: Session, stem: str) -> SimulationRun | None:
    job = session.scalar(select(Job).where(of_city(stem), Job.status.in_(ACTIVE)).order_by(Job.id).limit(1))
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
