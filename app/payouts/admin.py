"""Payouts awaiting approval: finance (and ops) approve other people's requests, one by one or in a batch."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from app.admin.batch import BatchReport, BatchView, MoneyPlan, each
from app.admin.paging import page_number, paginate
from app.db.models import Payout
from app.payouts import approvals as payout_approvals
from app.payouts.status import PayoutStatus
from app.payouts.web import approval_confirmation, approval_state, planned_approval
from app.platform.errors import CunguanError
from app.web.access import runtime


class PayoutsView(BatchView):
    read_roles = frozenset({"ops", "finance", "auditor"})
    write_roles = frozenset(payout_approvals.APPROVER_ROLES)

    @expose("/")
    def index(self) -> str:
        query = (
            select(Payout)
            .options(selectinload(Payout.deal))
            .where(Payout.status == PayoutStatus.AWAITING_APPROVAL)
            .order_by(Payout.created_at, Payout.id)
        )
        with runtime().db.uow() as uow:
            page = paginate(uow.session, query, page_number(request.args.get("page")))
        refusals = {payout.payout_id: payout_approvals.refusal(self.actor, payout, payout.deal) for payout in page.rows}
        return self.render("admin/cunguan/payouts.html", page=page, refusals=refusals)  # type: ignore[no-any-return]

    @expose("/<payout_id>/approve", methods=("POST",))
    def approve(self, payout_id: str) -> Response | str:
        page = approval_confirmation(payout_id, url_for(".index"))
        if page is not None:
            return page
        try:
            outcome = payout_approvals.approve(runtime(), self.actor, payout_id)
        except CunguanError as error:
            flash(error.message, "error")
        else:
            flash("已审批，付款已提交银行" if outcome.released else "已审批，等待其他审批人", "success")
        return redirect(url_for(".index"))

    def money_plan(self, action: str, rows: list[str]) -> MoneyPlan | None:
        """A batch approval pays: each payout the user may approve (its deal, payee masked, amount, who must still
        approve), those they may not and why; bound to each payout's status and approvals so far."""
        if action != "approve":
            return None
        payouts, refused, states = [], [], []
        with runtime().db.uow() as uow:
            query = select(Payout).options(selectinload(Payout.deal)).where(Payout.payout_id.in_(rows))
            found = {payout.payout_id: payout for payout in uow.session.scalars(query)}
            for row in rows:
                payout = found.get(row)
                if payout is None:
                    refused.append((row, "付款不存在"))
                    states.append(f"{row}:-")
                    continue
                states.append(f"{row}:{approval_state(payout)}")
                why = payout_approvals.refusal(self.actor, payout, payout.deal)
                if why is not None:
                    refused.append((row, why.message))
                else:
                    payouts.append((payout.deal.deal_no, planned_approval(payout)))
        return MoneyPlan(payouts, refused, ";".join(states))

    @action("approve", "审批通过", "所选付款将记入你的审批；审批人数已满的付款随即提交银行。")
    def batch_approve(self, rows: list[str], reason: str) -> BatchReport:
        rt, actor = runtime(), self.actor
        return each(rows, lambda payout_id: payout_approvals.approve(rt, actor, payout_id))
