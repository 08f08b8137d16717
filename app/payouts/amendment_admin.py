"""Payee amendments waiting for a second person, in the operations console: ops or finance approve other
people's proposals (the service refuses a self-approval whatever the page shows)."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_admin import expose
from werkzeug.wrappers import Response

from app.admin.base import RoleView
from app.db.models import Deal
from app.payouts import amendments
from app.platform.errors import CunguanError
from app.web.access import runtime


class PayeeAmendmentsView(RoleView):
    read_roles = frozenset({"ops", "finance", "auditor"})
    write_roles = frozenset(amendments.APPROVER_ROLES)

    @expose("/")
    def index(self) -> str:
        with runtime().db.uow() as uow:
            rows = amendments.pending(uow.session)
            deal_nos = {row.deal_id: uow.session.get_one(Deal, row.deal_id).deal_no for row in rows}
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/payee_amendments.html", rows=rows, deal_nos=deal_nos, me=self.actor.label
        )

    @expose("/<int:amendment_id>/approve", methods=("POST",))
    def approve(self, amendment_id: int) -> Response:
        try:
            amendments.approve(runtime(), self.actor, amendment_id)
        except CunguanError as error:
            flash(error.message, "error")
        else:
            flash("收款账户变更已审批，此后付款至变更后的账户", "success")
        return redirect(url_for(".index"))
