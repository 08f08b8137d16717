"""Users: password hashing, authentication, demo accounts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.audit import log as audit
from app.db.models import ROLES, User
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime

ROLE_LABELS = {
    "agent": "经纪人",
    "ops": "运营",
    "reviewer": "审核",
    "finance": "财务",
    "auditor": "审计",
    "admin": "管理员",
}
MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    display_name: str
    role: str


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    display_name: str
    role: str
    active: bool


def _info(user: User) -> UserInfo:
    return UserInfo(user.id, user.username, user.display_name, user.role)


def password_problem(username: str, password: str) -> str | None:
    """Why the password is not allowed (zh-CN), or None: at least MIN_PASSWORD_LENGTH characters, letters
    and digits, and not the username."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码至少 {MIN_PASSWORD_LENGTH} 位"
    if not any(c.isascii() and c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        return "密码须同时包含字母和数字"
    if username and username.lower() in password.lower():
        return "密码不能包含用户名"
    return None


def _check_password(username: str, password: str) -> None:
    problem = password_problem(username, password)
    if problem is not None:
        raise ValidationError(problem, code="WEAK_PASSWORD")


def _audit(rt: Runtime, session: Session, actor: str | None, action: str, username: str, **change: Any) -> None:
    """Record a person's change to a user in the same transaction (no entry for set-up and the CLI)."""
    if actor is not None:
        audit.append(session, at=rt.clock(), actor=actor, action=action, subject=f"user:{username}", **change)


def create_user(
    rt: Runtime, username: str, password: str, role: str, display_name: str, *, actor: str | None = None
) -> UserInfo:
    if role not in ROLES:
        raise ValidationError("未知角色", code="UNKNOWN_ROLE", details={"role": role})
    _check_password(username, password)
    with rt.db.uow() as uow:
        if uow.session.scalar(select(User).where(User.username == username)) is not None:
            raise ValidationError("用户名已存在", code="USER_EXISTS", details={"username": username})
        user = User(
            username=username,
            display_name=display_name,
            password_hash=generate_password_hash(password),
            role=role,
            active=True,
            created_at=rt.clock(),
        )
        uow.session.add(user)
        _audit(rt, uow.session, actor, "user.create", username, after={"role": role, "display_name": display_name})
        uow.commit()
        return _info(user)


def authenticate(rt: Runtime, username: str, password: str) -> UserInfo | None:
    with rt.db.uow() as uow:
        user = uow.session.scalar(select(User).where(User.username == username))
        if user is None or not user.active or not check_password_hash(user.password_hash, password):
            return None
        return _info(user)


def get_user(rt: Runtime, user_id: int) -> UserInfo | None:
    with rt.db.uow() as uow:
        user = uow.session.get(User, user_id)
        return _info(user) if user is not None and user.active else None


def create_demo_users(rt: Runtime) -> dict[str, str]:
    """One user per role, named after the role, with a random password; returns only the new ones."""
    created = {}
    for role in ROLES:
        with rt.db.uow() as uow:
            if uow.session.scalar(select(User).where(User.username == role)) is not None:
                continue
        password = _random_password(role)
        create_user(rt, role, password, role, f"演示{ROLE_LABELS[role]}")
        created[role] = password
    return created


def _random_password(username: str) -> str:
    while True:
        password = secrets.token_urlsafe(9)
        if password_problem(username, password) is None:
            return password


def set_password(rt: Runtime, username: str, password: str, *, actor: str | None = None) -> None:
    _check_password(username, password)
    with rt.db.uow() as uow:
        user = uow.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise ValidationError("用户不存在", code="UNKNOWN_USER", details={"username": username})
        user.password_hash = generate_password_hash(password)
        _audit(rt, uow.session, actor, "user.reset_password", username)
        uow.commit()


def set_active(rt: Runtime, username: str, active: bool, *, actor: str) -> None:
    """Deactivate (or reactivate) a user; a deactivated user's sessions end at their next request."""
    with rt.db.uow() as uow:
        user = uow.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise ValidationError("用户不存在", code="UNKNOWN_USER", details={"username": username})
        if user.active != active:
            change = {"before": {"active": user.active}, "after": {"active": active}}
            _audit(rt, uow.session, actor, "user.set_active", username, **change)
            user.active = active
        uow.commit()


def list_users(rt: Runtime) -> list[UserRow]:
    with rt.db.uow() as uow:
        users = uow.session.scalars(select(User).order_by(User.username))
        return [UserRow(u.id, u.username, u.display_name, u.role, u.active) for u in users]
