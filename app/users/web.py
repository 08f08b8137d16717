"""Login, logout and the user's own password change."""

from __future__ import annotations

import time
from urllib.parse import urlparse

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.platform.errors import CunguanError
from app.users import service as users
from app.users.login_throttle import LOCKED_MESSAGE, begin_attempt, failed, succeeded
from app.web.access import LOGIN_AT_KEY, SessionUser, runtime

bp = Blueprint("auth", __name__)


def _home(role: str) -> str:
    """Administrators manage accounts and see no deal: their home is the console."""
    return url_for("admin.index") if role == "admin" else url_for("deals.index")


def _safe_next(target: str | None, role: str) -> str:
    """Only local paths: never redirect a fresh login to another site."""
    if not target or urlparse(target).netloc or not target.startswith("/") or target.startswith("//"):
        return _home(role)
    return target


def _start_session(info: users.UserInfo) -> None:
    session.clear()  # no fixation: a fresh session for a fresh login
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME without a request
    session[LOGIN_AT_KEY] = int(time.time())  # wall clock, like the idle timeout: ends after the absolute lifetime
    login_user(SessionUser(info))


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if request.method == "POST":
        username, address = request.form.get("username", "").strip(), request.remote_addr or "-"
        if len(username) > users.MAX_NAME_LENGTH or len(request.form.get("password", "")) > users.MAX_PASSWORD_LENGTH:
            flash("用户名或密码错误", "error")  # no such account can exist: nothing to look up or count
            return render_template("login.html"), 400  # type: ignore[return-value]
        if not begin_attempt(runtime(), username, address):
            flash(LOCKED_MESSAGE, "error")
            return render_template("login.html"), 429  # type: ignore[return-value]
        try:
            info = users.authenticate(runtime(), username, request.form.get("password", ""))
        except users.RolePending as pending:
            flash(pending.message, "error")
            return render_template("login.html"), 403  # type: ignore[return-value]
        if info is not None:
            succeeded(runtime(), username, address)
            _start_session(info)
            if info.must_change_password:
                return redirect(url_for("auth.change_password"))
            return redirect(_safe_next(request.args.get("next"), info.role))
        failed(runtime(), username, address)
        flash("用户名或密码错误", "error")
        return render_template("login.html"), 401  # type: ignore[return-value]
    return render_template("login.html")


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    users.end_sessions(runtime(), current_user.info.id)
    logout_user()
    flash("已退出登录", "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password() -> str | Response:
    """Change one's own password; this ends every other session of the user and starts a fresh one here."""
    if request.method == "POST":
        form = request.form
        if form.get("new_password", "") != form.get("confirm_password", ""):
            flash("两次输入的新密码不一致", "error")
            return render_template("change_password.html"), 422  # type: ignore[return-value]
        try:
            info = users.change_password(
                runtime(), current_user.info.id, form.get("current_password", ""), form.get("new_password", "")
            )
        except CunguanError as error:
            flash(error.message, "error")
            return render_template("change_password.html"), 422  # type: ignore[return-value]
        _start_session(info)
        flash("密码已修改，其他会话已全部退出", "success")
        return redirect(_home(info.role))
    return render_template("change_password.html")
