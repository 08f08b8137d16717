"""Users: password hashing, authentication, demo accounts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from app.db.models import ROLES, User
from app.errors import ValidationError
from app.services.runtime import Runtime

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


def _info(user: User) -> UserInfo:
    return UserInfo(user.id, user.username, user.display_name, user.role)


def create_user(rt: Runtime, username: str, password: str, role: str, display_name: str) -> UserInfo:
    if role not in ROLES:
        raise ValidationError("未知角色", code="UNKNOWN_ROLE", details={"role": role})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"密码至少 {MIN_PASSWORD_LENGTH} 位", code="WEAK_PASSWORD")
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
        password = secrets.token_urlsafe(9)
        create_user(rt, role, password, role, f"演示{ROLE_LABELS[role]}")
        created[role] = password
    return created


def set_password(rt: Runtime, username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"密码至少 {MIN_PASSWORD_LENGTH} 位", code="WEAK_PASSWORD")
    with rt.db.uow() as uow:
        user = uow.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise ValidationError("用户不存在", code="UNKNOWN_USER", details={"username": username})
        user.password_hash = generate_password_hash(password)
        uow.commit()
