"""回调告警: the bank notifications refused with 409 (app.bank_inbox.alerts), for finance and ops to review."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.bank_inbox import alerts
from app.platform.errors import CunguanError
from app.web.access import current_actor, roles_required, runtime

bp = Blueprint("callback_alerts", __name__, url_prefix="/finance/callback-alerts")
READERS = (*alerts.REVIEW_ROLES, "auditor")
KIND_LABELS = {
    alerts.NOTIFICATION_CONFLICT: "同一通知编号内容不同",
    alerts.PAYOUT_NOT_SUBMITTED: "未提交付款的付款结果",
    alerts.ACCOUNT_NUMBER_INVALID: "开户账号格式不符",
}


@bp.route("")
@roles_required(*READERS)
def index() -> str:
    return render_template("finance/callback_alerts.html", alerts=alerts.open_alerts(runtime()), labels=KIND_LABELS)


@bp.route("/<int:alert_id>/resolve", methods=["POST"])
@roles_required(*alerts.REVIEW_ROLES)
def resolve(alert_id: int) -> Response:
    actor = current_actor()
    try:
        alerts.resolve(runtime(), actor.label, actor.role, alert_id, request.form.get("resolution", ""))
        flash("告警已处理")
    except CunguanError as error:
        flash(error.message, "error")
    return redirect(url_for("callback_alerts.index"))
