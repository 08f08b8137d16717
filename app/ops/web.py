"""Machine endpoints: the OpenAPI document of the bank callback API, liveness and readiness."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from app.ops.readiness import readiness
from app.web.access import ALL_ROLES, roles_required, runtime

bp = Blueprint("health", __name__)
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "schemas" / "bank-api.openapi.json"


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
