"""flask ledger check | balance | history | cutoff | fold | alert-threshold | alerts."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from app.domain.timezone import SHANGHAI
from app.platform.cli_base import CliGroup, current_runtime

ledger_cli = CliGroup("ledger", help="账务 / ledger")


@ledger_cli.command("check")
def ledger_check() -> None:
    """账务检查：借贷相等、余额与分录一致、受限账户无透支，否则退出码 1。

    Exit 1 unless debits equal credits, balances match their entries and no flagged account is broken."""
    from app.ledger.repo import check_ledger

    with current_runtime().db.uow() as uow:
        report = check_ledger(uow.session)
    click.echo(
        f"账户 {report.accounts_checked} 个，分录 {report.transfers_checked} 笔，"
        f"借方合计 {report.total_debits_fen} 分，贷方合计 {report.total_credits_fen} 分"
    )
    for problem in report.problems:
        click.echo(f"✗ {problem}", err=True)
    if not report.ok:
        sys.exit(1)
    click.echo("✓ 账务检查通过")


def _parse_instant(text: str) -> datetime:
    """ISO 8601; a time without a zone is read as Asia/Shanghai (what people mean here)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise click.BadParameter(
            f"时间格式应为 ISO 8601，例如 2026-11-23T18:00 或 2026-11-23T10:00Z：{text}"
        ) from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


@ledger_cli.command("balance")
@click.argument("account")
@click.option("--at", "at_text", help="ISO 8601 instant (default: now); without a zone, Asia/Shanghai")
def ledger_balance(account: str, at_text: str | None) -> None:
    """查询账户 ACCOUNT 的当前余额，或过去某一时刻的余额。

    Balance of ACCOUNT now, or as it was at a past instant."""
    from app.domain.money import format_yuan
    from app.ledger.repo import LedgerRepository, balance_at

    with current_runtime().db.uow() as uow:
        if at_text is None:
            amount_fen = LedgerRepository(uow.session).balance(account)
            click.echo(f"{account} 当前余额 {format_yuan(amount_fen)}（{amount_fen} 分）")
            return
        at = _parse_instant(at_text)
        amount_fen = balance_at(uow.session, account, at)
    click.echo(
        f"{account} 于 {at.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S} 的余额 {format_yuan(amount_fen)}（{amount_fen} 分）"
    )


@ledger_cli.command("history")
@click.argument("account")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def ledger_history(account: str, limit: int) -> None:
    """账户 ACCOUNT 的最近分录及每笔后的余额。

    The latest entries of ACCOUNT with the balance after each."""
    from app.domain.ledger import TRANSFER_LABELS
    from app.domain.money import format_yuan
    from app.ledger.repo import history

    with current_runtime().db.uow() as uow:
        lines = history(uow.session, account, limit)
    click.echo(f"{'时间（北京）':<19}  {'类型':<6} {'借方':>16} {'贷方':>16} {'余额':>16}  分录")
    for line in lines:
        entry = line.entry
        click.echo(
            f"{entry.at.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S}  {TRANSFER_LABELS.get(entry.code, entry.code):<6}"
            f" {format_yuan(entry.debit_fen):>16} {format_yuan(entry.credit_fen):>16}"
            f" {format_yuan(line.balance_fen):>16}  {entry.transfer_id}"
        )


@ledger_cli.command("cutoff")
@click.argument("account")
@click.option("--date", "day", required=True, type=click.DateTime(["%Y-%m-%d"]), help="calendar day, Asia/Shanghai")
def ledger_cutoff(account: str, day: datetime) -> None:
    """日切：账户 ACCOUNT 某日的期初余额、借方、贷方发生额与期末余额。

    日切: opening balance, debits, credits and closing balance of ACCOUNT for one day."""
    from app.domain.money import format_yuan
    from app.ledger.repo import cutoff

    with current_runtime().db.uow() as uow:
        report = cutoff(uow.session, account, day.date(), SHANGHAI)
    click.echo(
        f"{account} {report.day} 期初 {format_yuan(report.opening_fen)} 借方 {format_yuan(report.debits_fen)}"
        f" 贷方 {format_yuan(report.credits_fen)} 期末 {format_yuan(report.closing_fen)}"
    )


@ledger_cli.command("fold")
def ledger_fold() -> None:
    """立即合并热点账户的缓冲记账并作废过期冻结（worker 每几秒自动执行）。

    Fold hot accounts' buffered postings and void expired holds now (the worker does it every few seconds)."""
    from app.ledger.maintenance import maintain

    folded, voided = maintain(current_runtime())
    click.echo(f"已合并热点分录 {folded} 条，已解冻超时冻结 {voided} 笔")


@ledger_cli.command("alert-threshold")
@click.argument("account")
@click.argument("yuan", required=False)
@click.option("--off", is_flag=True, help="stop watching the account")
def ledger_alert_threshold(account: str, yuan: str | None, off: bool) -> None:
    """设置预警线：热点账户 ACCOUNT 预计余额低于 YUAN 元时预警。

    Alert when ACCOUNT's projected balance falls below YUAN (a hot account only)."""
    from app.domain.money import format_yuan, parse_yuan
    from app.ledger.repo import LedgerRepository

    if off == (yuan is not None):
        raise click.UsageError("请给出预警金额（元），或使用 --off")
    with current_runtime().db.uow() as uow:
        row = LedgerRepository(uow.session).account(account)
        if not row.hot:
            raise click.ClickException(f"{account} 不是热点账户，无需预警")
        row.alert_below_fen = None if off else parse_yuan(yuan or "")
        uow.commit()
        threshold = row.alert_below_fen
    click.echo(f"{account} 预警已关闭" if threshold is None else f"{account} 预警线：{format_yuan(threshold)}")


@ledger_cli.command("alerts")
def ledger_alerts() -> None:
    """列出热点账户未解除的低余额预警；有预警时退出码 1（供脚本与定时任务使用）。

    Open low-balance alerts of hot accounts; exit 1 when there is any (for scripts and cron)."""
    from app.domain.money import format_yuan
    from app.ledger.alerts import open_alerts

    alerts = open_alerts(current_runtime())
    for alert in alerts:
        local = alert.raised_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"⚠ {alert.account_code} 预计余额 {format_yuan(alert.projected_fen)}"
            f" 低于 {format_yuan(alert.threshold_fen)}（{local} 起）"
        )
    if alerts:
        sys.exit(1)
    click.echo("无预警")
