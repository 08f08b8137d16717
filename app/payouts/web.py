"""Payout approval by a second person (ops or finance, never the one who asked)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.db.models import Deal, Payout
from app.payouts import approvals as payout_approvals
from app.platform.errors import CunguanError
from app.web.access import current_actor, roles_required, runtime

bp = Blueprint("payouts", __name__)


@bp.app_template_global()
def may_approve(payout: Payout, deal: Deal) -> bool:
    """Whether the logged-in user may approve this payout of `deal` now (the service's rule, not the template's)."""
    return payout_approvals.refusal(current_actor(), payout, deal) is None


@bp.route("/payouts/<payout_id>/approve", methods=["POST"])
@roles_required(*payout_approvals.APPROVER_ROLES)
def approve(payout_id: str) -> Response:
    rt = runtime()
    with rt.db.uow() as uow:
        deal_id = uow.session.scalar(select(Payout.deal_id).where(Payout.payout_id == payout_id))
    try:
        outcome = payout_approvals.approve(rt, current_actor(), payout_id)
    except CunguanError as error:
        flash(error.message, "error")
    else:
        flash("已审批，付款已提交银行" if outcome.released else "已审批，等待其他审批人", "success")
    if deal_id is None:
        return redirect(url_for("deals.index"))
    return redirect(url_for("deals.show", deal_id=deal_id))
