"""Payout approval by a second person (ops or finance, never the one who asked)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.db.models import Deal, Payout
from app.deals.money_preview import MoneyPreview, PlannedPayout
from app.domain.pii_mask import mask_card, mask_name
from app.payouts import approvals as payout_approvals
from app.platform.errors import CunguanError
from app.web import money_confirm
from app.web.access import current_actor, roles_required, runtime

bp = Blueprint("payouts", __name__)


@bp.app_template_global()
def may_approve(payout: Payout, deal: Deal) -> bool:
    """Whether the logged-in user may approve this payout of `deal` now (the service's rule, not the template's)."""
    return payout_approvals.refusal(current_actor(), payout, deal) is None


def approval_state(payout: Payout) -> str:
    """What an approval's confirmation is bound to: the payout's status and how many approved it so far."""
    return f"{payout.status}:{len(payout.approved_by)}"


def planned_approval(payout: Payout) -> PlannedPayout:
    """The payout as its approval's confirmation shows it: payee masked, and how many must approve after this one."""
    remaining = max(payout.approvals_needed - len(payout.approved_by) - 1, 0)
    return PlannedPayout(
        mask_name(payout.payee_name), mask_card(payout.payee_account), payout.amount_fen, payout.purpose, remaining
    )


def approval_confirmation(payout_id: str, back_url: str) -> str | None:
    """The confirmation page of an approval (payee masked, amount in figures and 大写, who must still approve)
    unless this POST carries a valid confirmation token of it; None when it may go ahead."""
    with runtime().db.uow() as uow:
        payout = uow.session.scalar(select(Payout).where(Payout.payout_id == payout_id))
        deal = payout.deal if payout is not None else None
        if payout is None or deal is None or payout_approvals.refusal(current_actor(), payout, deal) is not None:
            return None  # the approval itself answers with its refusal: there is nothing to confirm
        state = approval_state(payout)
        subject = f"payout:{payout_id}"
        token = request.form.get(money_confirm.FIELD, "")
        if money_confirm.valid(token, subject, "approve", state, {}):
            return None
        if token:
            flash("确认已失效（付款状态已变化或已超过 15 分钟），请重新核对后确认", "error")
        preview = MoneyPreview(
            deal_id=deal.id,
            deal_no=deal.deal_no,
            state=state,
            event="approve",
            label="审批通过付款",
            payouts=[planned_approval(payout)],
        )
    return render_template(
        "deals/confirm.html",
        preview=preview,
        token=money_confirm.issue(subject, "approve", state, {}),
        action_url=request.path,
        hidden={},
        back_url=back_url,
    )


@bp.route("/payouts/<payout_id>/approve", methods=["POST"])
@roles_required(*payout_approvals.APPROVER_ROLES)
def approve(payout_id: str) -> Response | str:
    rt = runtime()
    with rt.db.uow() as uow:
        deal_id = uow.session.scalar(select(Payout.deal_id).where(Payout.payout_id == payout_id))
    back = url_for("deals.show", deal_id=deal_id) if deal_id is not None else url_for("deals.index")
    page = approval_confirmation(payout_id, back)
    if page is not None:
        return page
    try:
        outcome = payout_approvals.approve(rt, current_actor(), payout_id)
    except CunguanError as error:
        flash(error.message, "error")
    else:
        flash("已审批，付款已提交银行" if outcome.released else "已审批，等待其他审批人", "success")
    if deal_id is None:
        return redirect(url_for("deals.index"))
    return redirect(url_for("deals.show", deal_id=deal_id))
