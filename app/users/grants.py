"""Role grants under four eyes: an administrator proposes a role for a user (a new account or a change), a
second administrator approves it; only then does the role take effect. An approved change ends every session
of the user (`User.session_version`). Every step is audited in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.db.grant_models import RoleGrant
from app.db.models import ROLES, User
from app.platform.errors import NotFound, ValidationError
from app.platform.runtime import Runtime


@dataclass(frozen=True)
class GrantRow:
    id: int
    username: str
    role: str
    previous_role: str | None
    proposed_by: str
    proposed_at: datetime


def _record(session: Session, now: datetime, actor: str, action: str, grant: RoleGrant, username: str) -> None:
    audit.append(
        session,
        at=now,
        actor=actor,
        action=action,
        subject=f"user:{username}",
        before={"role": grant.previous_role},
        after={"role": grant.role, "status": grant.status},
        detail={"grant_id": grant.id, "proposed_by": grant.proposed_by},
    )


def open_grant(session: Session, user: User, role: str, proposer: str, now: datetime) -> RoleGrant:
    """Propose `role` for `user` (in the caller's transaction); `previous_role` None marks a new account."""
    if role not in ROLES:
        raise ValidationError("未知角色", code="UNKNOWN_ROLE", details={"role": role})
    if session.scalar(select(RoleGrant.id).where(RoleGrant.user_id == user.id, RoleGrant.status == "pending")):
        raise ValidationError(
            f"用户 {user.username} 已有待批准的角色变更", code="GRANT_PENDING", details={"username": user.username}
        )
    grant = RoleGrant(
        user_id=user.id,
        role=role,
        previous_role=user.role if user.role_approved else None,
        status="pending",
        proposed_by=proposer,
        proposed_at=now,
    )
    session.add(grant)
    session.flush()
    _record(session, now, proposer, "user.role_grant.propose", grant, user.username)
    return grant


def propose_role(rt: Runtime, username: str, role: str, proposer: str) -> int:
    """An administrator asks to change an existing user's role; nothing changes until a second one approves."""
    with rt.db.uow() as uow:
        user = uow.session.scalar(select(User).where(User.username == username).with_for_update())
        if user is None:
            raise ValidationError("用户不存在", code="UNKNOWN_USER", details={"username": username})
        if user.role_approved and user.role == role:
            raise ValidationError("该用户已是此角色", code="ROLE_UNCHANGED", details={"role": role})
        grant_id = open_grant(uow.session, user, role, proposer, rt.clock()).id
        uow.commit()
        return grant_id


def _pending(session: Session, grant_id: int, actor: str) -> tuple[RoleGrant, User]:
    grant = session.get(RoleGrant, grant_id, with_for_update=True)
    if grant is None or grant.status != "pending":
        raise NotFound("没有待批准的该项角色授权", code="GRANT_NOT_FOUND", details={"grant_id": grant_id})
    if grant.proposed_by == actor:
        raise ValidationError(
            "角色授权须由另一位管理员批准，提出人不能批准自己的申请", code="SAME_PERSON", details={"actor": actor}
        )
    user = session.get(User, grant.user_id, with_for_update=True)
    assert user is not None  # a foreign key
    return grant, user


def approve(rt: Runtime, grant_id: int, approver: str) -> None:
    """A second administrator approves: the role takes effect and every session of the user ends."""
    with rt.db.uow() as uow:
        grant, user = _pending(uow.session, grant_id, approver)
        now = rt.clock()
        grant.status, grant.decided_by, grant.decided_at = "approved", approver, now
        user.role, user.role_approved = grant.role, True
        user.session_version += 1
        _record(uow.session, now, approver, "user.role_grant.approve", grant, user.username)
        uow.commit()


def reject(rt: Runtime, grant_id: int, approver: str) -> None:
    """A second administrator refuses: the user keeps the role it had (a new account stays without one)."""
    with rt.db.uow() as uow:
        grant, user = _pending(uow.session, grant_id, approver)
        now = rt.clock()
        grant.status, grant.decided_by, grant.decided_at = "rejected", approver, now
        _record(uow.session, now, approver, "user.role_grant.reject", grant, user.username)
        uow.commit()


def pending_grants(rt: Runtime) -> list[GrantRow]:
    with rt.db.uow() as uow:
        rows = uow.session.execute(
            select(RoleGrant, User.username)
            .join(User, User.id == RoleGrant.user_id)
            .where(RoleGrant.status == "pending")
            .order_by(RoleGrant.id)
        ).all()
        return [GrantRow(g.id, username, g.role, g.previous_role, g.proposed_by, g.proposed_at) for g, username in rows]
