"""Finance pages: reconciliation runs (对账) of banks' daily statements - list, one run, start a run - and
their exceptions (差错): the open ones, resolving one with a reason."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from app.bank_inbox import reconciliation, reconciliation_exceptions
from app.db.ledger_models import LedgerAccount, LedgerTransfer
from app.domain.statements import BANK_TIMEZONE, DIRECTION_LABELS, STATUS_LABELS
from app.platform.errors import CunguanError
from app.web.access import current_actor, roles_required, runtime

bp = Blueprint("finance", __name__, url_prefix="/finance")
READERS = ("finance", "auditor")


def _banks() -> dict[str, str]:
    """Configured banks whose statement layout we know: code -> name."""
    known = set(runtime().known_banks)
    return {code: endpoint.name for code, endpoint in runtime().banks.items() if code in known}


def latest_statement_day(today: date) -> date:
    """The day the page opens on: the latest day before today on which a bank booked money for us (a posting on
    a bank clearing account), so a statement with lines; yesterday when there is none."""
    start = datetime.combine(today, time.min, tzinfo=BANK_TIMEZONE)
    with runtime().db.uow() as uow:
        latest = uow.session.scalar(
            select(func.max(LedgerTransfer.created_at))
            .join(LedgerAccount, LedgerTransfer.debit_account_id == LedgerAccount.id)
            .where(LedgerAccount.code.startswith("bank_clearing:"), LedgerTransfer.created_at < start)
        )
    return latest.astimezone(BANK_TIMEZONE).date() if latest is not None else today - timedelta(days=1)


@bp.route("/reconciliation")
@roles_required(*READERS)
def runs() -> str:
    latest = latest_statement_day(runtime().clock().astimezone(BANK_TIMEZONE).date())
    return render_template(
        "finance/runs.html",
        runs=reconciliation.list_runs(runtime()),
        open_exceptions=len(reconciliation_exceptions.list_exceptions(runtime())),
        banks=_banks(),
        default_day=latest.isoformat(),
    )


@bp.route("/reconciliation", methods=["POST"])
@roles_required("finance")
def start() -> Response:
    bank_code = request.form.get("bank", "")
    try:
        day = datetime.strptime(request.form.get("date", ""), "%Y-%m-%d").date()
    except ValueError:
        flash("对账日期格式不正确，应为 YYYY-MM-DD", "error")
        return redirect(url_for("finance.runs"))
    if bank_code not in _banks():
        flash("请选择银行", "error")
        return redirect(url_for("finance.runs"))
    try:
        run_id = reconciliation.reconcile(
            runtime(),
            bank_code,
            day,
            allow_incomplete=request.form.get("allow_incomplete") == "1",
            actor=current_actor().label,
        )
    except CunguanError as error:
        flash(f"对账未完成：{error.message}", "error")
        return redirect(url_for("finance.runs"))
    flash("对账完成")
    return redirect(url_for("finance.run", run_id=run_id))


@bp.route("/reconciliation/<int:run_id>")
@roles_required(*READERS)
def run(run_id: int) -> str:
    found = reconciliation.load_run(runtime(), run_id)
    return render_template(
        "finance/run.html",
        run=found,
        counts=reconciliation_exceptions.run_counts(runtime(), found),
        verdict=reconciliation_exceptions.verdict,
        bank_name=_banks().get(found.bank_code, found.bank_code),
        problems=[item for item in found.items if item.status != "matched"],
        matched=[item for item in found.items if item.status == "matched"],
        status_labels=STATUS_LABELS,
        direction_labels=DIRECTION_LABELS,
    )


@bp.route("/reconciliation/exceptions")
@roles_required(*READERS)
def exceptions() -> str:
    open_only = request.args.get("status", "open") == "open"
    return render_template(
        "finance/exceptions.html",
        exceptions=reconciliation_exceptions.list_exceptions(runtime(), open_only=open_only),
        open_only=open_only,
        banks=_banks(),
        status_labels=STATUS_LABELS,
    )


@bp.route("/reconciliation/exceptions/<int:exception_id>/resolve", methods=["POST"])
@roles_required("finance")
def resolve(exception_id: int) -> Response:
    back = request.form.get("next", "")
    if not back.startswith("/finance/"):
        back = url_for("finance.exceptions")
    try:
        reconciliation_exceptions.resolve(
            runtime(), exception_id, request.form.get("reason", ""), current_actor().label
        )
    except CunguanError as error:
        flash(f"处理失败：{error.message}", "error")
        return redirect(back)
    flash(f"差错 #{exception_id} 已处理")
    return redirect(back)
