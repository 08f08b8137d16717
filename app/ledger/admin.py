"""Ledger views for finance, auditors and admins (read-only): accounts with exact balances, one account's
history and daily cut-off (日切), transfers, and their CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Response, abort, request
from flask_admin import expose
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import aliased

from app.admin.base import RoleView
from app.admin.paging import page_number, paginate
from app.audit import log as audit
from app.db.ledger_models import LedgerAccount, LedgerTransfer
from app.domain.ledger import KIND_LABELS, TRANSFER_LABELS, balance_of
from app.domain.money import format_yuan
from app.domain.timezone import SHANGHAI
from app.ledger.repo import LedgerRepository, cutoff, history
from app.platform.csv_cells import safe_row
from app.platform.errors import LedgerError
from app.web.access import runtime
from app.web.filters import shanghai_time

TRANSFER_FILTERS = ("account", "code", "deal_id", "date_from", "date_to")
CSV_LIMIT = 100_000


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw or "")
    except ValueError:
        return None


def transfers_query(args: dict[str, str]) -> Select[Any]:
    debit, credit = aliased(LedgerAccount), aliased(LedgerAccount)
    query = (
        select(LedgerTransfer, debit.code, credit.code)
        .join(debit, LedgerTransfer.debit_account_id == debit.id)
        .join(credit, LedgerTransfer.credit_account_id == credit.id)
        .order_by(LedgerTransfer.created_at.desc(), LedgerTransfer.id.desc())
    )
    if args.get("account"):
        query = query.where(or_(debit.code == args["account"], credit.code == args["account"]))
    if args.get("code"):
        query = query.where(LedgerTransfer.code == args["code"])
    if args.get("deal_id", "").isdigit():
        query = query.where(LedgerTransfer.deal_id == int(args["deal_id"]))
    start, end = _day(args.get("date_from")), _day(args.get("date_to"))
    if start is not None:
        query = query.where(LedgerTransfer.created_at >= datetime.combine(start, time.min, tzinfo=SHANGHAI))
    if end is not None:
        query = query.where(
            LedgerTransfer.created_at < datetime.combine(end + timedelta(days=1), time.min, tzinfo=SHANGHAI)
        )
    return query


def _csv_lines(rows: list[Any]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["编号", "时间（北京时间）", "类型", "方式", "借方账户", "贷方账户", "金额（分）", "金额（元）", "存管单ID"]
    )
    for transfer, debit_code, credit_code in rows:
        writer.writerow(
            safe_row(
                [
                    transfer.id,
                    shanghai_time(transfer.created_at),
                    TRANSFER_LABELS.get(transfer.code, transfer.code),
                    KIND_LABELS.get(transfer.kind, transfer.kind),
                    debit_code,
                    credit_code,
                    transfer.amount_fen,
                    format_yuan(transfer.amount_fen, symbol=False),
                    transfer.deal_id or "",
                ]
            )
        )
    yield "\ufeff" + buffer.getvalue()  # BOM: Excel opens UTF-8 Chinese correctly


# the account list's kinds (a dropdown): the start of their codes, and their names
ACCOUNT_KINDS = {
    "custody": ("custody:", "存管户"),
    "bank_clearing": ("bank_clearing:", "银行清算户"),
    "suspense": ("suspense:", "挂账"),
    "fee_income": ("fee_income", "手续费收入"),
}


def account_prefix(kind: str, deal_no: str, prefix: str) -> str:
    """The start of the codes the list shows: a deal's custody account by its number, else a kind, else a
    prefix given in the address (older links)."""
    if deal_no:
        return f"custody:{deal_no}"
    if kind in ACCOUNT_KINDS:
        return ACCOUNT_KINDS[kind][0]
    return prefix


class LedgerView(RoleView):
    read_roles = frozenset({"finance", "auditor"})

    @expose("/")
    def index(self) -> str:
        kind, deal_no = request.args.get("kind", ""), request.args.get("deal_no", "").strip()
        prefix = account_prefix(kind, deal_no, request.args.get("prefix", "").strip())
        with runtime().db.uow() as uow:
            query = select(LedgerAccount).order_by(LedgerAccount.code)
            if prefix:
                query = query.where(LedgerAccount.code.startswith(prefix))
            page = paginate(uow.session, query, page_number(request.args.get("page")))
            repo = LedgerRepository(uow.session)
            rows = []
            for account in page.rows:
                debits, credits, debits_pending, credits_pending = repo.totals(account.code)
                rows.append((account, balance_of(account.type, debits, credits), debits_pending, credits_pending))
        args = {"prefix": prefix} if prefix else {}
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/accounts.html",
            page=page,
            rows=rows,
            kinds={code: name for code, (_, name) in ACCOUNT_KINDS.items()},
            kind=kind if kind in ACCOUNT_KINDS and not deal_no else "",
            deal_no=deal_no,
            args=args,
        )

    @expose("/account/<path:code>")
    def account(self, code: str) -> str:
        day = _day(request.args.get("date")) or runtime().clock().astimezone(SHANGHAI).date()
        with runtime().db.uow() as uow:
            try:
                account = LedgerRepository(uow.session).account(code)
            except LedgerError:
                abort(404)
            totals = LedgerRepository(uow.session).totals(code)
            lines = history(uow.session, code)
            day_report = cutoff(uow.session, code, day, SHANGHAI)
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/account.html",
            account=account,
            balance=balance_of(account.type, totals[0], totals[1]),
            totals=totals,
            lines=list(reversed(lines)),
            cutoff=day_report,
        )

    @expose("/transfers")
    def transfers(self) -> str:
        args = {key: request.args.get(key, "").strip() for key in TRANSFER_FILTERS}
        with runtime().db.uow() as uow:
            page = paginate(uow.session, transfers_query(args), page_number(request.args.get("page")))
        filled = {key: value for key, value in args.items() if value}
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/transfers.html", page=page, args=args, filled=filled, codes=TRANSFER_LABELS
        )

    @expose("/transfers.csv")
    def transfers_csv(self) -> Response:
        args = {key: request.args.get(key, "").strip() for key in TRANSFER_FILTERS}
        with runtime().db.uow() as uow:
            rows = list(uow.session.execute(transfers_query(args).limit(CSV_LIMIT)).all())
            filters = {key: value for key, value in args.items() if value}
            audit.append(
                uow.session,
                at=runtime().clock(),
                actor=self.actor.label,
                action="export.csv",
                subject="ledger:transfers",
                detail={"filters": filters, "rows": len(rows)},
            )
            uow.commit()
        stamp = runtime().clock().astimezone(SHANGHAI).strftime("%Y%m%d-%H%M%S")
        return Response(
            _csv_lines(rows),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="ledger-transfers-{stamp}.csv"'},
        )
