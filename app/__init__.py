"""Cunguan: the application factory."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from app.platform.config import Config


def create_app(config: Config | None = None) -> Flask:
    # Imported here so that `import app.domain...` stays light for pure unit tests.
    from app.platform.bootstrap import build_runtime
    from app.platform.config import ROOT, Config
    from app.platform.extensions import csrf, login_manager
    from app.platform.logs import configure_logging

    config = config or Config()
    configure_logging()
    app = Flask(
        __name__,
        instance_path=str(config.instance_path),
        static_folder=str(ROOT / "static"),
        template_folder="templates",
    )
    app.config.update(
        SECRET_KEY=config.secret_key,
        TESTING=config.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",  # every cookie is a staff login: no cross-site request carries it
        SESSION_COOKIE_SECURE=config.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=config.session_lifetime_s),
        MAX_CONTENT_LENGTH=1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.extensions["cunguan.config"] = config
    runtime = build_runtime(config)
    from app.sandbox.definitions import JOBS as DEFINITION_JOBS
    from app.sandbox.job import JOBS as SANDBOX_JOBS  # the console's 运行仿真: a tool outside the core

    runtime.jobs.update(SANDBOX_JOBS)
    runtime.jobs.update(DEFINITION_JOBS)
    app.extensions["cunguan.runtime"] = runtime
    csrf.init_app(app)
    login_manager.init_app(app)
    _register_web(app)
    from app.platform.commands import register_cli

    register_cli(app)
    return app


def _register_web(app: Flask) -> None:
    from app.admin import register as register_admin
    from app.agreements import web as agreements
    from app.bank_inbox import alerts_web as callback_alerts
    from app.bank_inbox import finance_web as finance
    from app.bank_inbox import web as callbacks
    from app.deals import web as deals
    from app.evidence import web as evidence
    from app.ops import metrics_web as metrics
    from app.ops import web as api
    from app.payouts import amendment_web as payee_amendments
    from app.payouts import web as payouts
    from app.signing import web as signing
    from app.users import web as auth
    from app.web import banners, errors, filters, labels
    from app.web.access import require_login, require_password_change
    from app.web.input_limits import refuse_overlong_fields

    for blueprint in (
        auth.bp,
        deals.bp,
        callbacks.bp,
        api.bp,
        metrics.bp,
        finance.bp,
        callback_alerts.bp,
        payouts.bp,
        agreements.bp,
        payee_amendments.bp,
        evidence.bp,
        signing.bp,
    ):
        app.register_blueprint(blueprint)
    from app.platform.request_context import register as register_request_context

    register_request_context(app)  # first: even a request sent to the login page gets its request id
    app.before_request(refuse_overlong_fields)  # before any view: an over-long value stores nothing
    app.before_request(require_login)
    app.before_request(require_password_change)
    banners.register(app)
    errors.register(app)
    filters.register(app)
    labels.register(app)
    register_admin(app)
