"""Machine endpoints: the OpenAPI document of the bank callback API, and liveness."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from app.web.access import ALL_ROLES, roles_required

bp = Blueprint("health", __name__)
OPENAPI_PATH = Path(__file__).resolve().parent.parent / "schemas" / "bank-api.openapi.json"


@bp.route("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.route("/api/openapi.json")
@roles_required(*ALL_ROLES)
def openapi() -> Response:
    return jsonify(json.loads(OPENAPI_PATH.read_text(encoding="utf-8")))
