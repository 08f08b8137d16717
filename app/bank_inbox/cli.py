"""flask reconcile: a bank's daily statement (对账单) against our inbox and ledger, as a table."""

from __future__ import annotations

import sys
import unicodedata
from datetime import datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app.bank_inbox import reconciliation
from app.bank_inbox.reconciliation_exceptions import OpenCounts, run_counts, verdict
from app.db.reconciliation_models import ReconciliationItem, ReconciliationRun
from app.domain.money import format_yuan
from app.domain.statements import DIRECTION_LABELS, STATUS_LABELS
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime

ITEM_COLUMNS = (
    ("行号", 5),
    ("状态", 14),
    ("方向", 4),
    ("银行流水号", 28),
    ("账号", 19),
    ("对账单金额", 16),
    ("平台金额", 16),
    ("付款编号", 16),
    ("存管单", 18),
)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _cell(text: str, width: int, right: bool = False) -> str:
    padding = " " * max(width - _width(text), 0)
    return padding + text if right else text + padding


def _yuan(amount_fen: int | None) -> str:
    return "" if amount_fen is None else format_yuan(amount_fen)


def _item_cells(item: ReconciliationItem) -> list[str]:
    return [
        "" if item.row_no is None else str(item.row_no),
        STATUS_LABELS[item.status],
        DIRECTION_LABELS.get(item.direction or "", ""),
        item.bank_reference or "",
        item.account_no or "",
        _yuan(item.amount_fen),
        _yuan(item.our_amount_fen),
        item.payout_id or "",
        item.deal_no or "",
    ]


def _exception_state(item: ReconciliationItem) -> str:
    found = item.exception
    if found is None:
        return ""
    if found.resolved_at is None:
        return f"［差错 #{found.id} 待处理］"
    return f"［差错 #{found.id} 已处理：{found.resolution}］"


def render_report(run: ReconciliationRun, bank_name: str, counts: OpenCounts) -> list[str]:
    """The run as lines of text: header, balances, counts per status, every item that is not a plain match
    with its exception's state, and the verdict from the exceptions open now (`counts`)."""
    source = "银行接口" if run.source == "bank" else f"文件 {run.source.removeprefix('file:')}"
    lines = [
        f"对账 #{run.id}：{bank_name}（{run.bank_code}） {run.statement_date.isoformat()}"
        f"  来源：{source}{'' if run.complete else '（未完整）'}  共 {run.line_count} 行",
        f"对账单 SM3：{run.statement_sm3}",
        f"银行期末余额：{_yuan(run.closing_balance_fen) or '（对账单未提供）'}"
        f"  平台日切余额：{_yuan(run.ledger_balance_fen)}",
        "",
        _cell("状态", 16) + _cell("笔数", 6, right=True),
    ]
    for status, label in STATUS_LABELS.items():
        if run.counts.get(status):
            lines.append(_cell(label, 16) + _cell(str(run.counts[status]), 6, right=True))
    shown = [item for item in run.items if item.status != "matched"]
    if shown:
        lines += ["", "明细（已匹配的不列出）："]
        lines.append("  ".join(_cell(title, width) for title, width in ITEM_COLUMNS) + "  说明")
        for item in shown:
            cells = _item_cells(item)
            row = "  ".join(
                _cell(text, width, right=title.endswith("金额"))
                for text, (title, width) in zip(cells, ITEM_COLUMNS, strict=True)
            )
            lines.append(f"{row}  {item.detail}{_exception_state(item)}")
    lines.append("")
    lines.append(verdict(counts))
    return lines


@click.command("reconcile")
@click.option("--bank", "bank_code", required=True, help="bank code, e.g. pab")
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]), help="statement day, Asia/Shanghai")
@click.option(
    "--file",
    "file_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a saved statement file instead of fetching it from the bank",
)
@click.option("--allow-incomplete", is_flag=True, help="also reconcile a statement the bank marks incomplete (today)")
@with_appcontext
def reconcile_command(bank_code: str, day: datetime, file_path: Path | None, allow_incomplete: bool) -> None:
    """与银行对账：将 DATE 的银行对账单与平台收件箱和账务核对，补录缺失的通知（补单）；该行仍有未解决项时退出码 1。

    Match the bank's statement of DATE with our inbox and ledger; repair missing notifications (补单).
    Exit 1 while anything of the bank is unresolved (an open exception, or a finding of today's statement)."""
    rt: Runtime = current_app.extensions["cunguan.runtime"]
    statement = None
    if file_path is not None:
        statement = reconciliation.statement_from_file(bank_code, day.date(), file_path.name, file_path.read_bytes())
    try:
        run_id = reconciliation.reconcile(
            rt, bank_code, day.date(), statement=statement, allow_incomplete=allow_incomplete, actor="system:cli"
        )
    except CunguanError as error:
        raise click.ClickException(f"{error.message}（{error.code}）") from error
    run = reconciliation.load_run(rt, run_id)
    counts = run_counts(rt, run)
    for line in render_report(run, rt.bank(bank_code).name, counts):
        click.echo(line)
    if counts.total:
        sys.exit(1)
