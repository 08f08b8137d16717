"""Banners on every staff page: open low-balance alerts of hot ledger accounts."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_login import current_user

from app.ledger.alerts import open_alerts
from app.web.access import runtime

STAFF_ROLES = frozenset({"ops", "reviewer", "finance", "auditor", "admin"})


def _alerts() -> dict[str, Any]:
    if not current_user.is_authenticated or current_user.role not in STAFF_ROLES:
        return {"ledger_alerts": []}
    return {"ledger_alerts": open_alerts(runtime())}


def register(app: Flask) -> None:
    app.context_processor(_alerts)
