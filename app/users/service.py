"""Users: password hashing, authentication, demo accounts.

Separation of duties (三权分立): an administrator manages accounts and holds no business role. A role an
administrator gives takes effect when a second one approves it (`app.users.grants`); a password an
administrator sets is one-time (`must_change_password`); a password change or reset, a deactivation or a
role change raises `session_version`, which every session carries, so every older session ends."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.audit import log as audit
from app.db.models import ROLES, User
from app.platform.errors import CunguanError, ValidationError
from app.platform.runtime import Runtime
from app.users import grants
from app.users.common_passwords import is_common

ROLE_LABELS = {
    "agent": "经纪人",
    "ops": "运营",
    "reviewer": "审核",
    "finance": "财务",
    "auditor": "审计",
    "admin": "管理员",
}
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
MAX_NAME_LENGTH = 64  # username and display name: the width of their columns


class RolePending(CunguanError):
    code = "ROLE_PENDING"
    http_status = 403


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    display_name: str
    role: str
    session_version: int
    must_change_password: bool


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    role_approved: bool
    must_change_password: bool


def _info(user: User) -> UserInfo:
    return UserInfo(
        user.id, user.username, user.display_name, user.role, user.session_version, user.must_change_password
    )


def password_problem(username: str, password: str) -> str | None:
    """Why the password is not allowed (zh-CN), or None: at least MIN_PASSWORD_LENGTH characters, letters
    and digits, not the username, and not in the shipped list of common passwords."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码至少 {MIN_PASSWORD_LENGTH} 位"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"密码不能超过 {MAX_PASSWORD_LENGTH} 个字符"
    if not any(c.isascii() and c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        return "密码须同时包含字母和数字"
    if username and username.lower() in password.lower():
        return "密码不能包含用户名"
    if is_common(password):
        return "该密码过于常见，请换一个"
    return None


def _check_password(username: str, password: str) -> None:
    problem = password_problem(username, password)
    if problem is not None:
        raise ValidationError(problem, code="WEAK_PASSWORD")


def _check_names(username: str, display_name: str) -> None:
    """Both fit their columns (a longer value would be a database error, a 500, on PostgreSQL)."""
    if not username:
        raise ValidationError("请填写用户名", code="USERNAME_MISSING")
    for label, value in (("用户名", username), ("姓名", display_name)):
        if len(value) > MAX_NAME_LENGTH:
            raise ValidationError(f"{label}不能超过 {MAX_NAME_LENGTH} 个字符", code="INPUT_TOO_LONG")


def _audit(rt: Runtime, session: Session, actor: str | None, action: str, username: str, **change: Any) -> None:
    """Record a person's change to a user in the same transaction (no entry for set-up and the CLI)."""
    if actor is not None:
        audit.append(session, at=rt.clock(), actor=actor, action=action, subject=f"user:{username}", **change)


def create_user(
    rt: Runtime, username: str, password: str, role: str, display_name: str, *, actor: str | None = None
) -> UserInfo:
    """A new user. Made by an administrator (`actor`), the role waits for a second administrator's approval
    and the password is one-time; set-up (fixtures, `flask user create-demo`) makes it effective at once."""
    if role not in ROLES:
        raise ValidationError("未知角色", code="UNKNOWN_ROLE", details={"role": role})
    _check_names(username, display_name)
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
            role_approved=actor is None,
            must_change_password=actor is not None,
        )
        uow.session.add(user)
        uow.session.flush()
        _audit(rt, uow.session, actor, "user.create", username, after={"role": role, "display_name": display_name})
        if actor is not None:
            grants.open_grant(uow.session, user, role, actor, rt.clock())
        uow.commit()
        return _info(user)


@cache
def _dummy_hash() -> str:
    """A hash of a random password, made with the default method (the one every stored hash uses)."""
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate(rt: Runtime, username: str, password: str) -> UserInfo | None:
    """The user, or None for a wrong name or password; RolePending when no approved role lets them in yet."""
    with rt.db.uow() as uow:
        user = uow.session.scalar(select(User).where(User.username == username))
        # an unknown name costs the same hash check as a known one: the timing does not tell which names exist
        stored = user.password_hash if user is not None else _dummy_hash()
        if not check_password_hash(stored, password) or user is None or not user.active:
            return None
        if not user.role_approved:
            raise RolePending("该账号的角色尚待另一位管理员批准，批准后才能登录", details={"username": username})
        return _info(user)


def get_user(rt: Runtime, user_id: int, session_version: int) -> UserInfo | None:
    """The user of a session made at `session_version`; None once that session has ended."""
    with rt.db.uow() as uow:
        user = uow.session.get(User, user_id)
        if user is None or not user.active or not user.role_approved or user.session_version != session_version:
            return None
        return _info(user)


def end_sessions(rt: Runtime, user_id: int) -> None:
    """Logout: raising the version ends this session on the server (a replayed cookie no longer works) and
    every other session of the user."""
    with rt.db.uow() as uow:
        user = uow.session.get(User, user_id, with_for_update=True)
        if user is not None:
            user.session_version += 1
        uow.commit()


def create_demo_users(rt: Runtime) -> dict[str, str]:
    """On a fresh install only (no user yet), one user per role, named after the role, with a random password;
    once there are users, roles are given under four eyes (`grants`), so this creates nothing."""
    with rt.db.uow() as uow:
        if uow.session.scalar(select(User.id).limit(1)) is not None:
            return {}
    created = {}
    for role in ROLES:
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
    """An administrator's (or the CLI's) reset: the password is one-time and every session of the user ends."""
    _check_password(username, password)
    with rt.db.uow() as uow:
        user = uow.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise ValidationError("用户不存在", code="UNKNOWN_USER", details={"username": username})
        user.password_hash = generate_password_hash(password)
        user.must_change_password = True
        user.session_version += 1
        _audit(rt, uow.session, actor, "user.reset_password", username)
        uow.commit()


def change_password(rt: Runtime, user_id: int, current: str, new: str) -> UserInfo:
    """The user's own change (the only way past a one-time password): every session ends, the caller's too;
    returns the user as a fresh session should carry it."""
    with rt.db.uow() as uow:
        user = uow.session.get(User, user_id, with_for_update=True)
        if user is None or not user.active:
            raise ValidationError("用户不存在", code="UNKNOWN_USER")
        if not check_password_hash(user.password_hash, current):
            raise ValidationError("当前密码不正确", code="WRONG_PASSWORD")
        if current == new:
            raise ValidationError("新密码不能与当前密码相同", code="SAME_PASSWORD")
        _check_password(user.username, new)
        user.password_hash = generate_password_hash(new)
        user.must_change_password = False
        user.session_version += 1
        _audit(rt, uow.session, f"user:{user.username}", "user.change_password", user.username)
        uow.commit()
        return _info(user)


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
            user.session_version += 1
        uow.commit()


def list_users(rt: Runtime) -> list[UserRow]:
    with rt.db.uow() as uow:
        users = uow.session.scalars(select(User).order_by(User.username))
        return [
            UserRow(u.id, u.username, u.display_name, u.role, u.active, u.role_approved, u.must_change_password)
            for u in users
        ]
