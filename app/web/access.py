"""Access control: everything needs a login except the endpoints listed here; views name their roles.

A session is bound to the user's `session_version` (its id is `<user id>.<version>`), so raising the version
ends it; a user whose password is one-time may only change it or log out (PASSWORD_CHANGE_REQUIRED)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, redirect, request, url_for
from flask_login import UserMixin, current_user

from app.deals.service import Actor
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime
from app.users.service import ROLE_LABELS, UserInfo

PUBLIC_ENDPOINTS = frozenset(
    {
        "auth.login",
        "static",
        "bank_callbacks.notify",
        "bank_callbacks.ping",
        "health.healthz",
        "health.readyz",
        "health.favicon",
        # a party's signing pages: the link's token is the credential (app/signing/web.py)
        "signing.page",
        "signing.agreement_html",
        "signing.send_code",
        "signing.check",
        "signing.sign",
    }
)
# Not public: the view itself accepts a staff login or a scrape token (see app/ops/metrics_web.py).
SELF_AUTHENTICATING_ENDPOINTS = frozenset({"metrics.metrics"})
# what a user with a one-time password may still reach
PASSWORD_CHANGE_ENDPOINTS = frozenset({"auth.change_password", "auth.logout", "static"})
# every role that works on deals: all but the system administrator, who manages accounts only (三权分立)
ALL_ROLES = tuple(role for role in ROLE_LABELS if role != "admin")

F = TypeVar("F", bound=Callable[..., Any])
LOGIN_AT_KEY = "login_at"  # the session's start (Unix seconds, UTC), for its absolute lifetime


class SessionUser(UserMixin):
    def __init__(self, info: UserInfo) -> None:
        self.info = info
        self.id = session_id(info.id, info.session_version)

    @property
    def role(self) -> str:
        return self.info.role

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.info.role]

    @property
    def actor(self) -> Actor:
        return Actor(self.info.id, self.info.username, self.info.role)


class PasswordChangeRequired(CunguanError):
    code = "PASSWORD_CHANGE_REQUIRED"
    http_status = 403


def session_id(user_id: int, session_version: int) -> str:
    return f"{user_id}.{session_version}"


def parse_session_id(value: str) -> tuple[int, int] | None:
    user_id, _, version = value.partition(".")
    return (int(user_id), int(version)) if user_id.isdigit() and version.isdigit() else None


def session_expired(login_at: object, now: int, max_age_s: int) -> bool:
    """A session without a start, or older than its absolute lifetime, has ended (idle or not)."""
    return not isinstance(login_at, int) or now - login_at >= max_age_s


def runtime() -> Runtime:
    return current_app.extensions["cunguan.runtime"]


def require_login() -> Any:
    """before_request hook: anonymous requests to anything but the public endpoints go to the login page."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint in SELF_AUTHENTICATING_ENDPOINTS:
        return None
    if request.endpoint is None:
        return None
    if current_user.is_authenticated:
        return None
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        abort(401)
    return redirect(url_for("auth.login", next=request.full_path))


def require_password_change() -> Any:
    """before_request hook (after require_login): a one-time password must be changed before anything else;
    a page is sent to the change form, anything else is refused with PASSWORD_CHANGE_REQUIRED."""
    if not current_user.is_authenticated or not current_user.info.must_change_password:
        return None
    if request.endpoint is None or request.endpoint in PASSWORD_CHANGE_ENDPOINTS:
        return None
    wants_json = request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"
    if request.method == "GET" and not wants_json:
        return redirect(url_for("auth.change_password"))
    raise PasswordChangeRequired("管理员设置的密码只能使用一次，请先修改密码")


def roles_required(*roles: str) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        view.allowed_roles = roles  # type: ignore[attr-defined] - read by the access test

        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                abort(401)
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def current_actor() -> Actor:
    return current_user.actor
