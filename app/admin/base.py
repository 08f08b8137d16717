"""The one base of every admin view: a login, then the view's roles (read for GET, write for the rest).

Agents never get in; an anonymous request goes to the login page; a wrong role gets the 403 page."""

from __future__ import annotations

from typing import Any, ClassVar

from flask import abort, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView
from flask_login import current_user

from app.deals.service import Actor

STAFF = frozenset({"ops", "reviewer", "finance", "auditor", "admin"})
READ_METHODS = frozenset({"GET", "HEAD"})


class RoleGuard:
    """Mixin for flask-admin views. Each concrete view sets `read_roles` (and `write_roles` if it has forms)."""

    read_roles: ClassVar[frozenset[str]]
    write_roles: ClassVar[frozenset[str]] = frozenset()
    # a form of the view that other roles post to: view function name -> roles (instead of write_roles)
    form_roles: ClassVar[dict[str, frozenset[str]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        read = getattr(self, "read_roles", None)
        if not read:
            raise TypeError(f"{type(self).__name__} must name its read_roles")
        writers = self.write_roles.union(*self.form_roles.values())
        if not read <= STAFF or not writers <= read:
            raise TypeError(f"{type(self).__name__}: roles must be staff roles, writers among the readers")
        super().__init__(*args, **kwargs)

    def is_accessible(self) -> bool:
        """For flask-admin's menu: the views this user may read."""
        return bool(current_user.is_authenticated and current_user.role in self.read_roles)

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path))
        allowed = self.read_roles if request.method in READ_METHODS else self.form_roles.get(name, self.write_roles)
        if current_user.role not in allowed:
            abort(403)
        return None

    @property
    def can_write(self) -> bool:
        return bool(current_user.is_authenticated and current_user.role in self.write_roles)

    def may_post(self, name: str) -> bool:
        """Whether the user may post the view's form `name` (for templates: show the form or not)."""
        roles = self.form_roles.get(name, self.write_roles)
        return bool(current_user.is_authenticated and current_user.role in roles)

    @property
    def actor(self) -> Actor:
        return current_user.actor  # type: ignore[no-any-return]


class RoleView(RoleGuard, BaseView):
    pass


class RoleIndexView(RoleGuard, AdminIndexView):
    pass
