"""The party's signing pages (no login: the link's token is the credential; CSRF on every form, no script).

GET /sign/<token> shows the agreement, the real-name check (name, ID number, one-time code) and, once checked,
the sign button with its confirmation; each form posts to its own URL and comes back to the page. Opening the page
is audited once per link, client session and day (`signing.opened`); a client over its hourly limits gets a Chinese
page with HTTP 429 (`clients.py`).
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, make_response, redirect, render_template, request, session, url_for

from app.domain.timezone import SHANGHAI
from app.signing import codes, service
from app.signing.clients import Client, ClientLimited
from app.web.access import runtime

bp = Blueprint("signing", __name__)


def _private(response: Response) -> Response:
    """The token is in the URL: never cached, never sent on as a referrer."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


OPENED_KEY = "signing_opened"  # the session's links (a prefix of the token's SM3) -> the day it was audited open


def _refused(error: service.SigningRefused | ClientLimited) -> Response:
    status = {"SIGNING_LINK_INVALID": 404, ClientLimited.code: 429}.get(error.code, 410)
    return _private(make_response(render_template("signing/refused.html", message=error.message), status))


def _client() -> Client:
    return Client(request.remote_addr or "-", request.headers.get("User-Agent", "")[:512])


def _first_opening_today(token: str) -> bool:
    """True once per link, client session and (Shanghai) day; the session remembers today's links only."""
    today, link = runtime().clock().astimezone(SHANGHAI).date().isoformat(), codes.token_hash(token)[:16]
    opened = {key: day for key, day in session.get(OPENED_KEY, {}).items() if day == today}
    if link in opened:
        return False
    session[OPENED_KEY] = {**opened, link: today}
    return True


@bp.get("/sign/<token>")
def page(token: str) -> Response:
    try:
        view = service.signing_page(runtime(), token)
        if _first_opening_today(token):
            service.record_opening(runtime(), token, _client())
    except service.SigningRefused as error:
        return _refused(error)
    return _private(make_response(render_template("signing/page.html", view=view, token=token)))


@bp.get("/sign/<token>/agreement.html")
def agreement_html(token: str) -> Response:
    """The agreement as the platform signed it, for the page's frame (framed by our own pages only)."""
    try:
        view = service.signing_page(runtime(), token)
    except service.SigningRefused as error:
        return _refused(error)
    response = make_response(view.agreement_html)
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
    )
    return _private(response)


def _back(token: str) -> Response:
    return _private(redirect(url_for("signing.page", token=token), code=303))


@bp.post("/sign/<token>/code")
def send_code(token: str) -> Response:
    try:
        phone = service.send_code(runtime(), token, _client())
    except ClientLimited as error:
        return _refused(error)
    except service.SigningRefused as error:
        if error.code.startswith("SIGNING_LINK"):
            return _refused(error)
        flash(error.message, "error")
        return _back(token)
    flash(f"验证码已发送至 {phone}，5 分钟内有效", "success")
    return _back(token)


@bp.post("/sign/<token>/check")
def check(token: str) -> Response:
    form = request.form
    try:
        entered = (form.get("name", ""), form.get("id_number", ""), form.get("code", ""))
        service.check_identity(runtime(), token, *entered, _client())
    except ClientLimited as error:
        return _refused(error)
    except service.SigningRefused as error:
        if error.code.startswith("SIGNING_LINK"):
            return _refused(error)
        flash(error.message, "error")
        return _back(token)
    flash("身份核验通过，请确认签署", "success")
    return _back(token)


@bp.post("/sign/<token>/sign")
def sign(token: str) -> Response:
    if request.form.get("confirm") != "yes":
        flash("请勾选确认后再签署", "error")
        return _back(token)
    try:
        view = service.signing_page(runtime(), token)
        service.sign(runtime(), token)
    except service.SigningRefused as error:
        if error.code.startswith("SIGNING_LINK"):
            return _refused(error)
        flash(error.message, "error")
        return _back(token)
    return _private(make_response(render_template("signing/done.html", view=view)))
