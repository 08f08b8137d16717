"""Reviewed, versioned publishing of workflows, clauses, agreement templates and calendars: the city configs'
flow (rules in `app.domain.config_versions`) over one generic table. draft → submitted (every check passes) →
simulated (`app.sandbox.definitions`: the cities that use it, with the draft in place) → approved by a second
person → published (the previous version retired). Every step is one transaction with its audit entry."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.db.definition_models import DefinitionSimulation, DefinitionVersion
from app.db.models import User
from app.definitions.kinds import Kind, content_sha256
from app.domain.config_versions import (
    AUTHOR_ROLES,
    OPEN_STATUSES,
    REVIEWER_ROLES,
    STATUS_LABELS,
    SYSTEM_AUTHOR,
    check_not_self_review,
    check_role,
    next_status,
)
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime
from app.queue.jobs import enqueue

SIMULATION_JOB = "simulate_definition"  # run by the sandbox (app.sandbox.definitions), added by the app factory
MAX_CHARS = 200_000  # the largest shipped definition is 7 kB
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@/-]{0,127}$")


class DefinitionInvalid(ValidationError):
    """A definition that must not be published; `details` lists every problem in Chinese."""

    code = "DEFINITION_INVALID"


def kind_of(rt: Runtime, kind: str) -> Kind:
    if kind not in rt.definitions.kinds:
        raise NotFound(f"未知的定义类型 {kind}", code="UNKNOWN_DEFINITION_KIND", details={"kind": kind})
    return rt.definitions.kinds[kind]


def problems(rt: Runtime, kind: str, name: str, content: str) -> list[str]:
    """Everything that keeps `content` from being published as `name`, in Chinese (empty: nothing)."""
    spec = kind_of(rt, kind)
    if not NAME.match(name) or ".." in name:
        return [f"名称 {name} 无效（字母、数字、_ . @ / -，不含 ..）"]
    found = spec.check(rt.registry, rt.definitions, name, content)
    if spec.immutable:
        current = rt.definitions.published(kind, name)
        if current is not None and current.sha256 != content_sha256(content):
            found.append(f"{spec.label} {name} 已发布，内容不能再改（运行中的存管单在用）；请用新的版本号")
    return found


def check(rt: Runtime, kind: str, name: str, content: str) -> None:
    found = problems(rt, kind, name, content)
    if found:
        label = kind_of(rt, kind).label
        raise DefinitionInvalid(f"{label} {name} 有 {len(found)} 处错误，不能发布：{found[0]}", details=found)


def _role(session: Session, username: str) -> str | None:
    return session.scalar(select(User.role).where(User.username == username, User.active.is_(True)))


def _of(kind: str, name: str) -> tuple[object, ...]:
    return (DefinitionVersion.kind == kind, DefinitionVersion.name == name)


def open_version(session: Session, kind: str, name: str) -> DefinitionVersion | None:
    """The version under work (draft, submitted or approved), if any."""
    return session.scalar(
        select(DefinitionVersion).where(*_of(kind, name), DefinitionVersion.status.in_(OPEN_STATUSES))
    )


def published_version(session: Session, kind: str, name: str) -> DefinitionVersion | None:
    return session.scalar(select(DefinitionVersion).where(*_of(kind, name), DefinitionVersion.status == "published"))


def _locked_open(session: Session, kind: str, name: str) -> DefinitionVersion:
    version = open_version(session, kind, name)
    if version is None:
        raise NotFound(f"{kind} {name} 没有待处理的版本", code="DEFINITION_VERSION_NOT_FOUND")
    session.refresh(version, with_for_update=True)
    return version


def _record(rt: Runtime, session: Session, actor: str, step: str, version: DefinitionVersion, before: str) -> None:
    audit.append(
        session,
        at=rt.clock(),
        actor=actor,
        action=f"definition.{step}",
        subject=f"{version.kind}:{version.name}:v{version.version}",
        before={"status": before},
        after={"status": version.status, "content_sha256": version.content_sha256},
        detail={"comment": version.comment},
    )


def save_draft(rt: Runtime, kind: str, name: str, content: str, author: str) -> DefinitionVersion:
    """A new draft of `name`, or new content for the draft under work; submitted or approved ones are frozen."""
    label = kind_of(rt, kind).label
    if len(content) > MAX_CHARS or not NAME.match(name) or ".." in name:
        raise ValidationError(f"名称无效或内容过长（最多 {MAX_CHARS} 字符）", code="DEFINITION_TOO_LARGE")
    with rt.db.uow() as uow:
        session = uow.session
        check_role(author, _role(session, author), AUTHOR_ROLES, f"编写{label}")
        current = open_version(session, kind, name)
        if current is not None and current.status != "draft":
            raise ValidationError(
                f"第 {current.version} 版{STATUS_LABELS[current.status]}，处理完成前不能新建草稿",
                code="CONFIG_VERSION_OPEN",
                details={"version": current.version, "status": current.status},
            )
        if current is None:
            latest = session.scalar(select(func.max(DefinitionVersion.version)).where(*_of(kind, name)))
            current = DefinitionVersion(kind=kind, name=name, version=(latest or 0) + 1, status="draft")
            session.add(current)
        current.content, current.content_sha256 = content, content_sha256(content)
        current.author, current.created_at = author, rt.clock()
        session.flush()
        _record(rt, session, author, "draft", current, "draft")
        uow.commit()
        return current


def submit(rt: Runtime, kind: str, name: str, author: str) -> DefinitionVersion:
    """Send the draft for review: refused (DefinitionInvalid, in Chinese) unless every check passes."""
    label = kind_of(rt, kind).label
    with rt.db.uow() as uow:
        session = uow.session
        check_role(author, _role(session, author), AUTHOR_ROLES, f"提交{label}")
        version = _locked_open(session, kind, name)
        status = next_status("submit", version.status)
        check(rt, kind, name, version.content)
        version.status, version.submitted_at = status, rt.clock()
        _record(rt, session, author, "submit", version, "draft")
        uow.commit()
        return version


def draft_content(rt: Runtime, kind: str, name: str) -> tuple[int, str]:
    """(version, content) of the version under work: what a simulation runs."""
    with rt.db.uow() as uow:
        version = open_version(uow.session, kind, name)
        if version is None:
            raise NotFound(f"{kind} {name} 没有待处理的版本", code="DEFINITION_VERSION_NOT_FOUND")
        return version.version, version.content


def record_simulation(rt: Runtime, kind: str, name: str, content: str, report: dict[str, object], run_by: str) -> None:
    with rt.db.uow() as uow:
        uow.session.add(
            DefinitionSimulation(
                kind=kind,
                name=name,
                content_sha256=content_sha256(content),
                ok=bool(report["ok"]),
                report=report,
                run_by=run_by,
                created_at=rt.clock(),
            )
        )
        uow.commit()


def request_simulation(rt: Runtime, kind: str, name: str, run_by: str) -> int:
    """Queue the simulation of the version under work for a worker (it runs city simulations: minutes)."""
    draft_content(rt, kind, name)  # NotFound: nothing to simulate
    with rt.db.uow() as uow:
        job = enqueue(uow.session, SIMULATION_JOB, {"kind": kind, "name": name, "run_by": run_by}, now=rt.clock())
        job.max_attempts = 2
        uow.commit()
        return job.id


def latest_simulation(session: Session, version: DefinitionVersion) -> DefinitionSimulation | None:
    """The latest simulation of exactly this content, passing or not (what the console shows)."""
    return session.scalar(
        select(DefinitionSimulation)
        .where(
            DefinitionSimulation.kind == version.kind,
            DefinitionSimulation.name == version.name,
            DefinitionSimulation.content_sha256 == version.content_sha256,
        )
        .order_by(DefinitionSimulation.id.desc())
        .limit(1)
    )


def passing_simulation(session: Session, version: DefinitionVersion) -> DefinitionSimulation | None:
    return session.scalar(
        select(DefinitionSimulation)
        .where(
            DefinitionSimulation.kind == version.kind,
            DefinitionSimulation.name == version.name,
            DefinitionSimulation.content_sha256 == version.content_sha256,
            DefinitionSimulation.ok.is_(True),
        )
        .order_by(DefinitionSimulation.id.desc())
        .limit(1)
    )


def _require_simulation(session: Session, version: DefinitionVersion) -> DefinitionSimulation:
    simulation = passing_simulation(session, version)
    if simulation is None:
        raise ValidationError(
            f"第 {version.version} 版尚无通过的仿真：请先运行仿真"
            f"（本页的「运行仿真」，或 flask definition simulate {version.kind} {version.name}）",
            code="SIMULATION_REQUIRED",
            details={"content_sha256": version.content_sha256},
        )
    return simulation


def review(rt: Runtime, kind: str, name: str, reviewer: str, comment: str, *, approve: bool) -> DefinitionVersion:
    """Approve (a passing simulation of this exact content) or reject; never one's own version."""
    if not comment.strip():
        raise ValidationError("审核意见不能为空", code="COMMENT_REQUIRED")
    step = "approve" if approve else "reject"
    label = kind_of(rt, kind).label
    with rt.db.uow() as uow:
        session = uow.session
        check_role(reviewer, _role(session, reviewer), REVIEWER_ROLES, f"审核{label}")
        version = _locked_open(session, kind, name)
        status = next_status(step, version.status)
        check_not_self_review(version.author, reviewer)
        if approve:
            check(rt, kind, name, version.content)
            _require_simulation(session, version)
        version.status, version.reviewer, version.comment = status, reviewer, comment
        version.reviewed_at = rt.clock()
        _record(rt, session, reviewer, step, version, "submitted")
        uow.commit()
        return version


def publish(rt: Runtime, kind: str, name: str, reviewer: str) -> DefinitionVersion:
    """Publish the approved version (served at once, no restart); the one published before is retired. Deals
    keep the versions they pinned."""
    label = kind_of(rt, kind).label
    with rt.db.uow() as uow:
        session = uow.session
        check_role(reviewer, _role(session, reviewer), REVIEWER_ROLES, f"发布{label}")
        version = _locked_open(session, kind, name)
        status = next_status("publish", version.status)
        check(rt, kind, name, version.content)
        previous = published_version(session, kind, name)
        if previous is not None:
            previous.status, previous.retired_at = "retired", rt.clock()
            session.flush()  # before this one becomes published (one published per name)
        version.status, version.published_at = status, rt.clock()
        _record(rt, session, reviewer, "publish", version, "approved")
        uow.commit()
    rt.definitions.forget()
    return version


def versions(rt: Runtime, kind: str, name: str | None = None) -> list[DefinitionVersion]:
    kind_of(rt, kind)
    query = select(DefinitionVersion).where(DefinitionVersion.kind == kind)
    if name is not None:
        query = query.where(DefinitionVersion.name == name)
    with rt.db.uow() as uow:
        return list(uow.session.scalars(query.order_by(DefinitionVersion.name, DefinitionVersion.version.desc())))


def import_files(rt: Runtime) -> tuple[list[str], list[str]]:
    """Publish each repository file (the seed) whose name has no version in the database yet, as version 1 by
    "system": (imported, refused) as "kind:name" - a file that does not pass its checks is never published."""
    imported, refused = [], []
    with rt.db.uow() as uow:
        session = uow.session
        for code, spec in rt.definitions.kinds.items():
            known = set(session.scalars(select(DefinitionVersion.name).where(DefinitionVersion.kind == code)))
            for name, content in sorted(spec.seed().items()):
                if name in known:
                    continue
                if spec.check(rt.registry, rt.definitions, name, content):
                    refused.append(f"{code}:{name}")
                    continue
                now = rt.clock()
                version = DefinitionVersion(
                    kind=code,
                    name=name,
                    version=1,
                    status="published",
                    content=content,
                    content_sha256=content_sha256(content),
                    author=SYSTEM_AUTHOR,
                    reviewer=SYSTEM_AUTHOR,
                    comment="随代码发布的初始版本",
                    created_at=now,
                    reviewed_at=now,
                    published_at=now,
                )
                session.add(version)
                session.flush()
                _record(rt, session, SYSTEM_AUTHOR, "import", version, "none")
                imported.append(f"{code}:{name}")
        uow.commit()
    rt.definitions.forget()
    return imported, refused
