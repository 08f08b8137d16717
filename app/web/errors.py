"""Error pages in Chinese for people, JSON for machines; security headers on every answer."""

from __future__ import annotations

import time

from flask import Flask, current_app, jsonify, render_template, request, session
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from app.db.contention import DATABASE_ERRORS, is_contention
from app.platform.errors import CunguanError
from app.platform.extensions import login_manager
from app.users.service import get_user
from app.web.access import LOGIN_AT_KEY, SessionUser, parse_session_id, runtime, session_expired

MESSAGES = {
    400: "请求有误",
    401: "请先登录",
    403: "当前角色无权访问此页面",
    404: "页面不存在",
    405: "不支持该请求方式",
    413: "请求内容过大",
    422: "提交的内容有误",
    500: "系统内部错误，请稍后再试",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _render(status: int, code: str, message: str) -> tuple[Response | str, int]:
    if _wants_json():
        return jsonify({"code": code, "message": message}), status
    return render_template("error.html", status=status, message=message), status


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    )
    if current_user and getattr(current_user, "is_authenticated", False):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def register(app: Flask) -> None:
    @login_manager.user_loader
    def load_user(session_id: str) -> SessionUser | None:
        """The session's user, or None (the session has ended) when its version is no longer the user's."""
        max_age_s = current_app.extensions["cunguan.config"].session_max_age_s
        if session_expired(session.get(LOGIN_AT_KEY), int(time.time()), max_age_s):
            return None
        parsed = parse_session_id(session_id)
        info = get_user(runtime(), *parsed) if parsed is not None else None
        return SessionUser(info) if info is not None else None

    @app.errorhandler(CunguanError)
    def domain_error(error: CunguanError) -> tuple[Response | str, int]:
        status = error.http_status if 400 <= error.http_status < 600 else 400
        return _render(status, error.code, error.message)

    def database_error(error: Exception) -> tuple[Response | str, int]:
        """Contention (concurrent actions on one deal) is a 409 BUSY to retry; any other database error stays
        a 500."""
        if not is_contention(error):
            raise error
        return _render(409, "BUSY", "系统繁忙，请稍后重试")

    for error_class in DATABASE_ERRORS:
        app.register_error_handler(error_class, database_error)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[Response | str, int]:
        return _render(400, "CSRF_FAILED", "页面已过期或表单校验失败，请刷新后重试")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response | str, int]:
        status = error.code or 500
        return _render(status, f"HTTP_{status}", MESSAGES.get(status, error.description or "请求失败"))

    app.after_request(_security_headers)
