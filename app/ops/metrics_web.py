"""/metrics in the Prometheus text format.

Protected: a logged-in staff user (admin, ops, finance, auditor), or `Authorization: Bearer <token>` where
the token is CUNGUAN_METRICS_TOKEN or the content of `<keys dir>/metrics.token` (mode 0600), compared in
constant time. Without a configured token only the staff login works.
"""

from __future__ import annotations

import hmac
import os

from flask import Blueprint, Response, abort, current_app, request
from flask_login import current_user

from app.ops.metrics import exposition
from app.platform.config import Config
from app.web.access import runtime

bp = Blueprint("metrics", __name__)
STAFF_ROLES = ("admin", "ops", "finance", "auditor")
TOKEN_FILE = "metrics.token"
MIN_TOKEN_LENGTH = 16


def configured_token() -> str | None:
    """The scrape token, or None when none is configured (or it is too short to be one)."""
    token = os.environ.get("CUNGUAN_METRICS_TOKEN", "").strip()
    if not token:
        config: Config = current_app.extensions["cunguan.config"]
        path = (config.keys_dir or config.instance_path / "keys") / TOKEN_FILE
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
    return token if len(token) >= MIN_TOKEN_LENGTH else None


def _bearer_ok() -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    expected = configured_token()
    if expected is None:
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


def metrics() -> Response:
    if not _bearer_ok():
        if not current_user.is_authenticated:
            abort(401)
        if current_user.role not in STAFF_ROLES:
            abort(403)
    return Response(exposition(runtime()), mimetype="text/plain; version=0.0.4")


bp.add_url_rule("/metrics", view_func=metrics)
