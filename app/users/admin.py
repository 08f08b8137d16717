"""Users (admins manage, auditors read) and the audit log (auditors and admins, read-only, chain check).

A role an administrator gives (a new account or a change) waits for a second administrator's approval."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from flask import flash, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import Select, select
from werkzeug.wrappers import Response

from app.admin.base import RoleView
from app.admin.paging import page_number, paginate
from app.audit import log as audit
from app.db.audit_models import AuditEntry
from app.domain.timezone import SHANGHAI
from app.platform.errors import CunguanError
from app.users import grants
from app.users.service import ROLE_LABELS, create_user, list_users, set_active, set_password
from app.web.access import runtime


class UsersView(RoleView):
    read_roles = frozenset({"auditor", "admin"})
    write_roles = frozenset({"admin"})

    @expose("/")
    def index(self) -> str:
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/users.html",
            users=list_users(runtime()),
            roles=ROLE_LABELS,
            grants=grants.pending_grants(runtime()),
        )

    @expose("/create", methods=("POST",))
    def create(self) -> Response:
        form = request.form
        username = form.get("username", "").strip()
        try:
            create_user(
                runtime(),
                username,
                form.get("password", ""),
                form.get("role", ""),
                form.get("display_name", "").strip() or username,
                actor=self.actor.label,
            )
        except CunguanError as error:
            flash(f"未能创建用户：{error.message}", "error")
        else:
            flash(f"已创建用户 {username}：角色待另一位管理员批准后生效，初始密码须在首次登录时修改", "success")
        return redirect(url_for(".index"))

    @expose("/<username>/role", methods=("POST",))
    def role(self, username: str) -> Response:
        try:
            grants.propose_role(runtime(), username, request.form.get("role", ""), self.actor.label)
        except CunguanError as error:
            flash(f"未能提出角色变更：{error.message}", "error")
        else:
            flash(f"已提出 {username} 的角色变更，待另一位管理员批准", "success")
        return redirect(url_for(".index"))

    @expose("/grants/<int:grant_id>/approve", methods=("POST",))
    def approve_grant(self, grant_id: int) -> Response:
        try:
            grants.approve(runtime(), grant_id, self.actor.label)
        except CunguanError as error:
            flash(error.message, "error")
        else:
            flash("已批准角色授权，该用户的会话已全部退出", "success")
        return redirect(url_for(".index"))

    @expose("/grants/<int:grant_id>/reject", methods=("POST",))
    def reject_grant(self, grant_id: int) -> Response:
        try:
            grants.reject(runtime(), grant_id, self.actor.label)
        except CunguanError as error:
            flash(error.message, "error")
        else:
            flash("已驳回角色授权", "success")
        return redirect(url_for(".index"))

    @expose("/<username>/active", methods=("POST",))
    def active(self, username: str) -> Response:
        active = request.form.get("active") == "1"
        if not active and username == self.actor.username:
            flash("不能停用自己的账号", "error")
            return redirect(url_for(".index"))
        try:
            set_active(runtime(), username, active, actor=self.actor.label)
        except CunguanError as error:
            flash(error.message, "error")
        else:
            flash(f"已{'启用' if active else '停用'}用户 {username}", "success")
        return redirect(url_for(".index"))

    @expose("/<username>/password", methods=("POST",))
    def password(self, username: str) -> Response:
        try:
            set_password(runtime(), username, request.form.get("password", ""), actor=self.actor.label)
        except CunguanError as error:
            flash(f"未能重置密码：{error.message}", "error")
        else:
            flash(f"已重置 {username} 的密码（一次性密码，须由本人登录后修改）", "success")
        return redirect(url_for(".index"))


AUDIT_FILTERS = ("action", "actor", "subject", "date_from", "date_to")


def _audit_query(args: dict[str, str]) -> Select[Any]:
    """Audit entries matching the filled filters, newest first (dates are Shanghai calendar days, inclusive)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if args["action"]:
        query = query.where(AuditEntry.action == args["action"])
    if args["actor"]:
        query = query.where(AuditEntry.actor.contains(args["actor"]))
    if args["subject"]:
        query = query.where(AuditEntry.subject.contains(args["subject"]))
    for key, after in (("date_from", False), ("date_to", True)):
        try:
            day = date.fromisoformat(args[key]) + timedelta(days=1 if after else 0)
        except ValueError:
            continue
        start = datetime.combine(day, time.min, tzinfo=SHANGHAI)
        query = query.where(AuditEntry.at < start if after else AuditEntry.at >= start)
    return query


class AuditView(RoleView):
    read_roles = frozenset({"auditor", "admin"})

    def _page(self, result: tuple[int, list[Any]] | None) -> str:
        args = {key: request.args.get(key, "").strip() for key in AUDIT_FILTERS}
        with runtime().db.uow() as uow:
            page = paginate(uow.session, _audit_query(args), page_number(request.args.get("page")))
            actions = sorted(uow.session.scalars(select(AuditEntry.action).distinct()))
        filled = {key: value for key, value in args.items() if value}
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/audit.html", page=page, args=args, filled=filled, actions=actions, result=result
        )

    @expose("/")
    def index(self) -> str:
        return self._page(None)

    @expose("/verify")
    def verify(self) -> str:
        try:
            checked, breaks = audit.verify(runtime())
        except CunguanError as error:  # the MAC key is missing: say so instead of an error page
            checked, breaks = 0, [error.message]
        return self._page((checked, list(breaks)))
