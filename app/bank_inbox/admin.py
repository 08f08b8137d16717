"""Work queues: the suspense review queue (finance acts, auditors read) and failed jobs (admins retry)."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from app.admin.base import RoleView
from app.admin.batch import BatchReport, BatchView, each
from app.admin.paging import page_number, paginate
from app.bank_inbox import suspense
from app.bank_inbox.suspense import REASON_LABELS, STATUS_LABELS
from app.db.models import Job, SuspenseItem
from app.deals import ops_actions
from app.deals.money_preview import PlannedPayout
from app.domain.pii_mask import mask_card, mask_name
from app.payouts.status import PayoutPurpose
from app.platform.errors import CunguanError, NotFound
from app.web import money_confirm
from app.web.access import runtime


class SuspenseView(RoleView):
    read_roles = frozenset({"finance", "auditor"})
    write_roles = frozenset({"finance"})

    @expose("/")
    def index(self) -> str:
        status = request.args.get("status", "open")
        with runtime().db.uow() as uow:
            query = select(SuspenseItem).options(selectinload(SuspenseItem.deal)).order_by(SuspenseItem.created_at)
            if status in STATUS_LABELS:
                query = query.where(SuspenseItem.status == status)
            page = paginate(uow.session, query, page_number(request.args.get("page")))
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/suspense.html",
            page=page,
            status=status,
            statuses=STATUS_LABELS,
            reasons=REASON_LABELS,
        )

    @expose("/<int:item_id>")
    def item(self, item_id: int) -> str:
        with runtime().db.uow() as uow:
            item = uow.session.get(SuspenseItem, item_id, options=[selectinload(SuspenseItem.deal)])
        if item is None:
            abort(404)
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/suspense_item.html", item=item, statuses=STATUS_LABELS, reasons=REASON_LABELS
        )

    @expose("/<int:item_id>/match", methods=("POST",))
    def match(self, item_id: int) -> Response:
        form = request.form
        try:
            ops_actions.match_suspense(
                runtime(), item_id, form.get("deal_no", ""), form.get("reason", ""), self.actor.label
            )
        except CunguanError as error:
            flash(error.message, "error")
            return redirect(url_for(".item", item_id=item_id))
        flash("已提出匹配，待另一位财务人员批准", "success")
        return redirect(url_for(".item", item_id=item_id))

    @expose("/<int:item_id>/approve-match", methods=("POST",))
    def approve_match(self, item_id: int) -> Response:
        try:
            deal_no = suspense.approve_match(runtime(), item_id, self.actor.label)
        except CunguanError as error:
            flash(error.message, "error")
            return redirect(url_for(".item", item_id=item_id))
        flash(f"已批准匹配到存管单 {deal_no}", "success")
        return redirect(url_for(".index"))

    def _return_confirmation(self, item_id: int, reason: str) -> str | None:
        """The confirmation page of a return by original route (payee: the payer, masked; amount in figures and
        大写; no approval follows) unless this POST carries its valid token; None when it may go ahead, or when
        the return itself answers with its refusal (no such item, handled already, no reason, no original route)."""
        with runtime().db.uow() as uow:
            item = uow.session.get(SuspenseItem, item_id, options=[selectinload(SuspenseItem.deal)])
        if item is None or item.status != "open" or not reason or not (item.payer_name and item.payer_account):
            return None
        claims = (f"suspense:{item_id}", "return", item.status, {"reason": reason})
        token = request.form.get(money_confirm.FIELD, "")
        if money_confirm.valid(token, *claims):
            return None
        if token:
            flash("确认已失效（挂账状态已变化或已超过 15 分钟），请重新核对后确认", "error")
        planned = PlannedPayout(
            mask_name(item.payer_name), mask_card(item.payer_account), item.amount_fen, PayoutPurpose.RETURN, 0
        )
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/suspense_return_confirm.html",
            item=item,
            planned=planned,
            reason=reason,
            token=money_confirm.issue(*claims),
        )

    @expose("/<int:item_id>/return", methods=("POST",))
    def return_(self, item_id: int) -> Response | str:
        reason = request.form.get("reason", "").strip()
        page = self._return_confirmation(item_id, reason)
        if page is not None:
            return page
        try:
            payout_id = ops_actions.return_suspense(runtime(), item_id, reason, self.actor.label)
        except CunguanError as error:
            flash(error.message, "error")
            return redirect(url_for(".item", item_id=item_id))
        flash(f"已发起原路退回（{payout_id}）", "success")
        return redirect(url_for(".index"))


JOB_STATUS_LABELS = {"failing": "重试中", "dead": "已放弃", "pending": "待执行", "running": "执行中", "done": "已完成"}


def _job_id(row: str) -> int:
    if not row.isdigit():
        raise NotFound("任务不存在", code="JOB_NOT_FOUND", details={"id": row})
    return int(row)


class JobsView(BatchView):
    read_roles = frozenset({"auditor", "admin"})
    write_roles = frozenset({"admin"})
    reason_actions = frozenset({"retry"})

    @action("retry", "重试", "所选任务将立即重新排队，尝试次数清零。")
    def batch_retry(self, rows: list[str], reason: str) -> BatchReport:
        rt, who = runtime(), self.actor.label
        return each(rows, lambda row: ops_actions.retry_job(rt, _job_id(row), reason, who))

    @expose("/")
    def index(self) -> str:
        status = request.args.get("status", "failing")
        with runtime().db.uow() as uow:
            query = select(Job).order_by(Job.updated_at.desc(), Job.id.desc())
            if status == "failing":
                query = query.where(Job.status == "pending", Job.attempts > 0)
            elif status in JOB_STATUS_LABELS:
                query = query.where(Job.status == status)
            page = paginate(uow.session, query, page_number(request.args.get("page")))
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/jobs.html", page=page, status=status, statuses=JOB_STATUS_LABELS
        )

    @expose("/<int:job_id>/retry", methods=("POST",))
    def retry(self, job_id: int) -> Response:
        try:
            ops_actions.retry_job(runtime(), job_id, request.form.get("reason", ""), self.actor.label)
        except CunguanError as error:
            flash(error.message, "error")
        else:
            flash(f"任务 {job_id} 已重新排队", "success")
        return redirect(url_for(".index", status=request.form.get("status", "failing")))
