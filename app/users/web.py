"""Login and logout."""

from __future__ import annotations

from urllib.parse import urlparse

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.users.login_throttle import LOCKED_MESSAGE, clear_failures, is_locked, record_failure
from app.users.service import authenticate
from app.web.access import SessionUser, runtime

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect a fresh login to another site."""
    if not target or urlparse(target).netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("deals.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if request.method == "POST":
        username, address = request.form.get("username", "").strip(), request.remote_addr or "-"
        if is_locked(runtime(), username, address):
            flash(LOCKED_MESSAGE, "error")
            return render_template("login.html"), 429  # type: ignore[return-value]
        info = authenticate(runtime(), username, request.form.get("password", ""))
        if info is not None:
            clear_failures(runtime(), username, address)
            session.clear()  # no fixation: a fresh session for a fresh login
            session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME
            login_user(SessionUser(info))
            return redirect(_safe_next(request.args.get("next")))
        record_failure(runtime(), username, address)
        flash("用户名或密码错误", "error")
        return render_template("login.html"), 401  # type: ignore[return-value]
    return render_template("login.html")


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    logout_user()
    flash("已退出登录", "info")
    return redirect(url_for("auth.login"))
