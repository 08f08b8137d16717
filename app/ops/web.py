"""Machine endpoints: the OpenAPI document of the bank callback API, liveness and readiness, and the icon every
browser asks for at /favicon.ico."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, current_app, jsonify, send_from_directory
from werkzeug.wrappers import Response

from app.ops.readiness import readiness
from app.web.access import ALL_ROLES, roles_required, runtime

bp = Blueprint("health", __name__)
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "schemas" / "bank-api.openapi.json"


@bp.route("/favicon.ico")
def favicon() -> Response:
    """The site's icon (static/favicon.ico), where browsers look for it without being told: no 404 per page."""
    assert current_app.static_folder is not None
    return send_from_directory(current_app.static_folder, "favicon.ico", max_age=7 * 24 * 3600)


@bp.route("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.route("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when this process can serve (database, migrations, keys, PDF fonts, banks), else 503; no secrets."""
    result = readiness(runtime())
    answer = jsonify(result.as_json())
    answer.headers["Cache-Control"] = "no-store"
    return answer, 200 if result.ready else 503


@bp.route("/api/openapi.json")
@roles_required(*ALL_ROLES)
def openapi() -> Response:
    return jsonify(json.loads(OPENAPI_PATH.read_text(encoding="utf-8")))
