"""Users (admins manage, auditors read) and the audit log (auditors and admins, read-only, chain check).

A role an administrator gives (a new account or a change) waits for a second administrator's approval."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.admin.base import RoleView
from app.admin.paging import page_number, paginate
from app.audit import log as audit
from app.db.audit_models import AuditEntry
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


class AuditView(RoleView):
    read_roles = frozenset({"auditor", "admin"})

    @expose("/")
    def index(self) -> str:
        with runtime().db.uow() as uow:
            query = select(AuditEntry).order_by(AuditEntry.id.desc())
            if request.args.get("action"):
                query = query.where(AuditEntry.action == request.args["action"])
            page = paginate(uow.session, query, page_number(request.args.get("page")))
        args = {"action": request.args["action"]} if request.args.get("action") else {}
        return self.render("admin/cunguan/audit.html", page=page, args=args, result=None)  # type: ignore[no-any-return]

    @expose("/verify")
    def verify(self) -> str:
        try:
            checked, breaks = audit.verify(runtime())
        except CunguanError as error:  # the MAC key is missing: say so instead of an error page
            checked, breaks = 0, [error.message]
        with runtime().db.uow() as uow:
            page = paginate(uow.session, select(AuditEntry).order_by(AuditEntry.id.desc()), 1)
        return self.render("admin/cunguan/audit.html", page=page, args={}, result=(checked, breaks))  # type: ignore[no-any-return]
