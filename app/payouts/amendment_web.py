"""Payee amendments on the deal page: propose an account for the receiving role (with a reason), approve
another person's proposal. A refusal (self-approval: 403) answers with its Chinese message, JSON for machines."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from app.db.payee_models import PayeeAmendment
from app.payouts import amendments
from app.web.access import current_actor, roles_required, runtime

bp = Blueprint("payee_amendments", __name__)


@bp.app_template_global()
def pending_amendments(deal_id: int) -> list[PayeeAmendment]:
    """The deal's amendments waiting for a second person (the deal page lists them)."""
    with runtime().db.uow() as uow:
        return amendments.pending(uow.session, deal_id)


@bp.route("/deals/<int:deal_id>/payee-amendments", methods=["POST"])
@roles_required(*amendments.PROPOSER_ROLES)
def propose(deal_id: int) -> Response:
    form = request.form
    if form.get("payee_account_again", "").strip() != form.get("payee_account", "").strip():
        flash("两次输入的收款账号不一致，未提出变更", "error")
        return redirect(url_for("deals.show", deal_id=deal_id))
    amendments.propose(
        runtime(),
        current_actor(),
        deal_id,
        form.get("payee_name", ""),
        form.get("payee_account", ""),
        form.get("reason", ""),
    )
    flash("收款账户变更已提出，须由另一人审批后生效", "info")
    return redirect(url_for("deals.show", deal_id=deal_id))


@bp.route("/payee-amendments/<int:amendment_id>/approve", methods=["POST"])
@roles_required(*amendments.APPROVER_ROLES)
def approve(amendment_id: int) -> Response:
    deal_id = amendments.approve(runtime(), current_actor(), amendment_id)
    flash("收款账户变更已审批，此后付款至变更后的账户", "info")
    return redirect(url_for("deals.show", deal_id=deal_id))
