"""Access control: everything needs a login except the endpoints listed here; views name their roles."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, redirect, request, url_for
from flask_login import UserMixin, current_user

from app.deals.service import Actor
from app.platform.runtime import Runtime
from app.users.service import ROLE_LABELS, UserInfo

PUBLIC_ENDPOINTS = frozenset(
    {"auth.login", "static", "bank_callbacks.notify", "bank_callbacks.ping", "health.healthz", "health.readyz"}
)
# Not public: the view itself accepts a staff login or a scrape token (see app/ops/metrics_web.py).
SELF_AUTHENTICATING_ENDPOINTS = frozenset({"metrics.metrics"})
ALL_ROLES = tuple(ROLE_LABELS)

F = TypeVar("F", bound=Callable[..., Any])


class SessionUser(UserMixin):
    def __init__(self, info: UserInfo) -> None:
        self.info = info
        self.id = str(info.id)

    @property
    def role(self) -> str:
        return self.info.role

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.info.role]

    @property
    def actor(self) -> Actor:
        return Actor(self.info.id, self.info.username, self.info.role)


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
