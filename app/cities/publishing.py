"""Reviewed, versioned publishing of city configs (rules in `app.domain.config_versions`).

Every step is one transaction that also appends an audit entry; config changes carry before/after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.cities.sources import SessionCitySource, open_version, published_version
from app.db.config_models import CityConfigVersion, ConfigSimulation
from app.db.models import User
from app.domain.cities import CityCatalog, CityConfig, ResolvedCity
from app.domain.config_versions import (
    AUTHOR_ROLES,
    REVIEWER_ROLES,
    STATUS_LABELS,
    SYSTEM_AUTHOR,
    check_not_self_review,
    check_role,
    content_sha256,
    next_status,
    parse_content,
)
from app.domain.validation_budget import within_budget
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime


def _role(session: Session, username: str) -> str | None:
    return session.scalar(select(User.role).where(User.username == username, User.active.is_(True)))


def validated(rt: Runtime, session: Session, stem: str, content: str) -> tuple[ResolvedCity, CityConfig]:
    """`content` as the config of `stem`, resolved against the published parents; CityConfigInvalid lists problems
    (ConfigValidationTimeout when the checks take longer than `rt.config_validation_budget_s`)."""
    folder = rt.cities.folder
    catalog = CityCatalog(folder, rt.cities.check, SessionCitySource(session, folder, {stem: content}))
    with within_budget(f"{stem}.json", rt.config_validation_budget_s):
        return catalog.load_resolved(stem)


def _subject(version: CityConfigVersion) -> str:
    return f"city_config:{version.city_code}:v{version.version}"


def _record(
    rt: Runtime, session: Session, actor: str, action: str, version: CityConfigVersion, before: Any, after: Any
) -> None:
    detail = {"status": version.status, "content_sha256": version.content_sha256, "comment": version.comment}
    if version.copied_from is not None:
        detail["copied_from"] = version.copied_from
    audit.append(
        session,
        at=rt.clock(),
        actor=actor,
        action=action,
        subject=_subject(version),
        before=before,
        after=after,
        detail=detail,
    )


def _next_number(session: Session, stem: str) -> int:
    latest = session.scalar(select(func.max(CityConfigVersion.version)).where(CityConfigVersion.city_code == stem))
    return (latest or 0) + 1


def _version(session: Session, stem: str, number: int | None = None) -> CityConfigVersion:
    """The version under work (or version `number`), locked for the change."""
    if number is None:
        version = open_version(session, stem)
    else:
        version = session.scalar(
            select(CityConfigVersion).where(CityConfigVersion.city_code == stem, CityConfigVersion.version == number)
        )
    if version is None:
        which = "待处理的版本" if number is None else f"第 {number} 版"
        raise NotFound(f"城市配置 {stem} 没有{which}", code="CONFIG_VERSION_NOT_FOUND", details={"city": stem})
    session.refresh(version, with_for_update=True)
    return version


def _copied_from(session: Session, stem: str) -> str | None:
    """The source recorded on the city's latest earlier version (a rejected first draft, for instance)."""
    query = select(CityConfigVersion.copied_from).where(CityConfigVersion.city_code == stem)
    return session.scalar(query.order_by(CityConfigVersion.version.desc()).limit(1))


def save_draft(
    rt: Runtime, stem: str, content: str, author: str, *, copied_from: str | None = None
) -> CityConfigVersion:
    """A new draft of `stem`, or new content for the draft under work. Submitted or approved versions are frozen.
    Line endings are stored as LF (browsers send CRLF). `copied_from`: the city a new city's draft copies (its
    plain diff compares with it); a later version of a city never published keeps the source."""
    content = content.replace("\r\n", "\n")
    after = parse_content(content)
    with rt.db.uow() as uow:
        session = uow.session
        check_role(author, _role(session, author), AUTHOR_ROLES, "编写城市配置")
        current = open_version(session, stem)
        if current is not None and current.status != "draft":
            raise ValidationError(
                f"第 {current.version} 版{STATUS_LABELS[current.status]}，处理完成前不能新建草稿",
                code="CONFIG_VERSION_OPEN",
                details={"version": current.version, "status": current.status},
            )
        published = published_version(session, stem)
        base = current or published
        before = parse_content(base.content) if base is not None else None
        if current is None:
            current = CityConfigVersion(city_code=stem, version=_next_number(session, stem), status="draft")
            current.copied_from = copied_from or (None if published is not None else _copied_from(session, stem))
            session.add(current)
        current.content, current.content_sha256 = content, content_sha256(content)
        current.author, current.created_at = author, rt.clock()
        session.flush()
        _record(rt, session, author, "city_config.draft", current, before, after)
        uow.commit()
        return current


def submit(rt: Runtime, stem: str, author: str) -> CityConfigVersion:
    """Send the draft for review: it must pass every check and a complete simulation of this exact content."""
    with rt.db.uow() as uow:
        session = uow.session
        check_role(author, _role(session, author), AUTHOR_ROLES, "提交城市配置")
        version = _version(session, stem)
        status = next_status("submit", version.status)
        simulation = _require_simulation(rt, session, version)  # every check, then this exact content simulated
        version.status, version.submitted_at = status, rt.clock()
        _record(
            rt,
            session,
            author,
            "city_config.submit",
            version,
            {"status": "draft"},
            {"status": status, "simulation_id": simulation.id},
        )
        uow.commit()
        return version


def passing_simulation(session: Session, version: CityConfigVersion, resolved_sha256: str) -> ConfigSimulation | None:
    """The latest complete, passing simulation of exactly this content resolved exactly this way; for a
    rollback, one run since it was proposed (the content's earlier simulations were of another version)."""
    since = [ConfigSimulation.created_at >= version.created_at] if version.rollback_of is not None else []
    return session.scalar(
        select(ConfigSimulation)
        .where(
            ConfigSimulation.city_code == version.city_code,
            ConfigSimulation.content_sha256 == version.content_sha256,
            ConfigSimulation.resolved_sha256 == resolved_sha256,
            ConfigSimulation.complete.is_(True),
            ConfigSimulation.ok.is_(True),
            *since,
        )
        .order_by(ConfigSimulation.id.desc())
        .limit(1)
    )


def _require_simulation(rt: Runtime, session: Session, version: CityConfigVersion) -> ConfigSimulation:
    _, city = validated(rt, session, version.city_code, version.content)
    simulation = passing_simulation(session, version, city.sha256)
    if simulation is None:
        raise ValidationError(
            f"第 {version.version} 版尚无通过的仿真（或继承的配置已变）：请先对全部业务运行仿真"
            f"（城市配置页的「运行仿真」，或 flask city simulate {version.city_code}）",
            code="SIMULATION_REQUIRED",
            details={"content_sha256": version.content_sha256, "resolved_sha256": city.sha256},
        )
    return simulation


def review(rt: Runtime, stem: str, reviewer: str, comment: str, *, approve: bool) -> CityConfigVersion:
    """Approve (needs a passing simulation of this exact version) or reject; never one's own version."""
    if not comment.strip():
        raise ValidationError("审核意见不能为空", code="COMMENT_REQUIRED")
    step = "approve" if approve else "reject"
    with rt.db.uow() as uow:
        session = uow.session
        check_role(reviewer, _role(session, reviewer), REVIEWER_ROLES, "审核城市配置")
        version = _version(session, stem)
        status = next_status(step, version.status)
        check_not_self_review(version.author, reviewer)
        detail: dict[str, Any] = {"status": status}
        if approve:
            detail["simulation_id"] = _require_simulation(rt, session, version).id
        version.status, version.reviewer, version.comment = status, reviewer, comment
        version.reviewed_at = rt.clock()
        _record(rt, session, reviewer, f"city_config.{step}", version, {"status": "submitted"}, detail)
        uow.commit()
        return version


def _retire_published(rt: Runtime, session: Session, stem: str) -> CityConfigVersion | None:
    current = published_version(session, stem)
    if current is not None:
        current.status, current.retired_at = "retired", rt.clock()
        session.flush()  # before another row of the city becomes published (one published per city)
    return current


def publish(rt: Runtime, stem: str, reviewer: str) -> CityConfigVersion:
    """Publish the approved version; the one published before is retired. Running deals keep their pinned config."""
    with rt.db.uow() as uow:
        session = uow.session
        check_role(reviewer, _role(session, reviewer), REVIEWER_ROLES, "发布城市配置")
        version = _version(session, stem)
        status = next_status("publish", version.status)
        _require_simulation(rt, session, version)  # the parents may have changed since the approval
        previous = _retire_published(rt, session, stem)
        version.status, version.published_at = status, rt.clock()
        before = parse_content(previous.content) if previous is not None else None
        _record(rt, session, reviewer, "city_config.publish", version, before, parse_content(version.content))
        uow.commit()
        return version


def propose_rollback(rt: Runtime, stem: str, to_version: int, reviewer: str, comment: str) -> CityConfigVersion:
    """Propose to republish an earlier published version: a new version with its content (`rollback_of`),
    submitted for review with the proposer as its author. It is published like any other version: a second
    reviewer approves it on a passing simulation of this exact version run after the proposal, then it is
    published. The history only grows."""
    with rt.db.uow() as uow:
        session = uow.session
        check_role(reviewer, _role(session, reviewer), REVIEWER_ROLES, "回滚城市配置")
        current = open_version(session, stem)
        if current is not None:
            raise ValidationError(
                f"第 {current.version} 版{STATUS_LABELS[current.status]}，处理完成前不能提出回滚",
                code="CONFIG_VERSION_OPEN",
                details={"version": current.version, "status": current.status},
            )
        target = _version(session, stem, to_version)
        if target.status != "retired":
            raise ValidationError(
                f"只能回滚到曾经发布、现已停用的版本（第 {to_version} 版{STATUS_LABELS[target.status]}）",
                code="ROLLBACK_TARGET",
                details={"version": to_version, "status": target.status},
            )
        validated(rt, session, stem, target.content)
        now = rt.clock()
        version = CityConfigVersion(
            city_code=stem,
            version=_next_number(session, stem),
            status="submitted",
            content=target.content,
            content_sha256=target.content_sha256,
            author=reviewer,
            comment=comment or f"回滚到第 {to_version} 版",
            rollback_of=to_version,
            created_at=now,
            submitted_at=now,
        )
        session.add(version)
        session.flush()
        published = published_version(session, stem)
        before = parse_content(published.content) if published is not None else None
        _record(rt, session, reviewer, "city_config.rollback", version, before, parse_content(version.content))
        uow.commit()
        return version


def versions(rt: Runtime, stem: str) -> list[CityConfigVersion]:
    with rt.db.uow() as uow:
        query = select(CityConfigVersion).where(CityConfigVersion.city_code == stem)
        return list(uow.session.scalars(query.order_by(CityConfigVersion.version.desc())))


def import_files(rt: Runtime) -> list[str]:
    """Publish each shipped file whose city has no version in the database yet, as version 1 by "system"."""
    folder = rt.cities.folder
    imported = []
    with rt.db.uow() as uow:
        session = uow.session
        known = set(session.scalars(select(CityConfigVersion.city_code).distinct()))
        for path in sorted(folder.glob("*.json")):
            if path.stem in known:
                continue
            content = path.read_text(encoding="utf-8")
            validated(rt, session, path.stem, content)
            now = rt.clock()
            version = CityConfigVersion(
                city_code=path.stem,
                version=1,
                status="published",
                content=content,
                content_sha256=content_sha256(content),
                author=SYSTEM_AUTHOR,
                reviewer=SYSTEM_AUTHOR,
                comment="随代码发布的初始配置",
                created_at=now,
                reviewed_at=now,
                published_at=now,
            )
            session.add(version)
            session.flush()
            _record(rt, session, SYSTEM_AUTHOR, "city_config.import", version, None, parse_content(content))
            imported.append(path.stem)
        uow.commit()
    return imported
