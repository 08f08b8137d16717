"""/metrics in the Prometheus text format (staff login required; token scraping comes with deployment)."""

from __future__ import annotations

from flask import Blueprint, Response

from app.services.ledger_alerts import hot_account_figures
from app.web.access import roles_required, runtime

bp = Blueprint("metrics", __name__)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@bp.route("/metrics")
@roles_required("admin", "ops", "finance", "auditor")
def metrics() -> Response:
    figures = hot_account_figures(runtime())
    lines = [
        "# HELP cunguan_ledger_hot_projected_balance_fen Balance of a hot account if every hold in flight posts.",
        "# TYPE cunguan_ledger_hot_projected_balance_fen gauge",
        *(f'cunguan_ledger_hot_projected_balance_fen{{account="{_label(f.code)}"}} {f.projected_fen}' for f in figures),
        "# HELP cunguan_ledger_hot_buffered_entries Buffered postings not yet folded into the account.",
        "# TYPE cunguan_ledger_hot_buffered_entries gauge",
        *(f'cunguan_ledger_hot_buffered_entries{{account="{_label(f.code)}"}} {f.buffered_entries}' for f in figures),
        "# HELP cunguan_ledger_hot_alert Whether a low-balance alert is open for the account (1) or not (0).",
        "# TYPE cunguan_ledger_hot_alert gauge",
        *(f'cunguan_ledger_hot_alert{{account="{_label(f.code)}"}} {int(f.alert_open)}' for f in figures),
    ]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
