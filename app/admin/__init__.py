"""The operations console at /admin (flask-admin): one role-checked base view, Chinese pages, no CDN."""

from __future__ import annotations

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme


def register(app: Flask) -> Admin:
    from app.bank_inbox.admin import JobsView, SuspenseView
    from app.banks.admin import BanksView
    from app.cities.admin import ConfigsView
    from app.deals.admin import DealsView
    from app.definitions.admin import DefinitionsView
    from app.ledger.admin import LedgerView
    from app.ops.admin import DashboardView
    from app.payouts.admin import PayoutsView
    from app.payouts.amendment_admin import PayeeAmendmentsView
    from app.signing.admin import SmsOutboxView
    from app.users.admin import AuditView, UsersView

    admin = Admin(
        app,
        name="存管运营后台",
        index_view=DashboardView(name="看板", url="/admin"),
        theme=Bootstrap4Theme(base_template="admin/cunguan/base.html", fluid=True),
    )
    for view in (
        DealsView(name="存管单", endpoint="admin_deals", url="/admin/deals"),
        LedgerView(name="账务", endpoint="admin_ledger", url="/admin/ledger"),
        ConfigsView(name="城市配置", endpoint="admin_configs", url="/admin/configs"),
        DefinitionsView(name="工作流与协议", endpoint="admin_definitions", url="/admin/definitions"),
        SuspenseView(name="挂账队列", endpoint="admin_suspense", url="/admin/suspense"),
        PayoutsView(name="付款审批", endpoint="admin_payouts", url="/admin/payouts"),
        PayeeAmendmentsView(name="收款账户变更", endpoint="admin_payee_amendments", url="/admin/payee-amendments"),
        JobsView(name="任务", endpoint="admin_jobs", url="/admin/jobs"),
        UsersView(name="用户", endpoint="admin_users", url="/admin/users"),
        BanksView(name="银行", endpoint="admin_banks", url="/admin/banks"),
        AuditView(name="审计日志", endpoint="admin_audit", url="/admin/audit"),
        SmsOutboxView(name="短信模拟", endpoint="admin_sms", url="/admin/sms"),
    ):
        admin.add_view(view)
    return admin
