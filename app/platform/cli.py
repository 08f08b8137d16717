"""flask keys | db | user | worker | ledger | city | bank-sim commands."""

from __future__ import annotations

import signal
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.platform.config import ROOT
from app.platform.runtime import Runtime


class CliGroup(AppGroup):
    """Domain errors end a command with their Chinese message and exit code 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from app.platform.errors import CunguanError

        try:
            return super().invoke(ctx)
        except CunguanError as error:
            raise click.ClickException(f"{error.message}（{error.code}）") from error


keys_cli = CliGroup("keys", help="密钥管理 / key management")
db_cli = CliGroup("db", help="数据库迁移 / database migrations")
user_cli = CliGroup("user", help="用户管理 / users")
ledger_cli = CliGroup("ledger", help="账务 / ledger")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _rt() -> Runtime:
    return current_app.extensions["cunguan.runtime"]


@keys_cli.command("init")
def keys_init() -> None:
    """Create the platform seal key and certificate, bank keys and the PII key, where missing."""
    from app.crypto.keys import ensure_keys
    from app.platform.bootstrap import build_runtime

    config = current_app.extensions["cunguan.config"]
    ensure_keys(config.keys_dir, config.banks.keys())
    current_app.extensions["cunguan.runtime"] = build_runtime(config)
    click.echo(f"密钥目录：{config.keys_dir}")


def alembic_config(database_url: str):  # type: ignore[no-untyped-def] - alembic.config.Config
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from alembic import command

    url = _rt().db.url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
    click.echo("数据库已迁移到最新版本")


@user_cli.command("create-demo")
def user_create_demo() -> None:
    """One demo user per role; passwords are printed once, here."""
    from app.users.service import ROLE_LABELS, create_demo_users

    created = create_demo_users(_rt())
    if not created:
        click.echo("演示用户已存在（忘记密码可用 flask user set-password 用户名 重设）")
        return
    click.echo("演示用户（密码只显示这一次，请记下）：")
    for username, password in created.items():
        click.echo(f"  {ROLE_LABELS[username]:<4} 用户名 {username:<9} 密码 {password}")


@user_cli.command("create")
@click.argument("username")
@click.option("--role", required=True)
@click.option("--name", "display_name", required=True)
@click.password_option()
def user_create(username: str, role: str, display_name: str, password: str) -> None:
    from app.users.service import create_user

    create_user(_rt(), username, password, role, display_name)
    click.echo(f"已创建用户 {username}")


@user_cli.command("set-password")
@click.argument("username")
@click.password_option()
def user_set_password(username: str, password: str) -> None:
    from app.users.service import set_password

    set_password(_rt(), username, password)
    click.echo(f"已重设 {username} 的密码")


@click.command("worker")
@click.option("--burst", is_flag=True, help="run due jobs, then exit")
@click.option("--poll", "poll_s", default=0.5, show_default=True, help="seconds between polls when idle")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64), help="worker threads")
@click.option(
    "--lease",
    "lease_s",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.5),
    help="seconds a claimed job stays reserved; a dead worker's jobs are due again after this",
)
def worker_command(burst: bool, poll_s: float, concurrency: int, lease_s: float) -> None:
    """Run background jobs (bank requests) until stopped. On PostgreSQL, N threads claim jobs with
    SKIP LOCKED; SQLite has one writer at a time, so it runs a single loop whatever N says."""
    from app.queue.worker import run_workers

    rt = _rt()
    if concurrency > 1 and rt.db.url.startswith("sqlite"):
        click.echo("SQLite 只允许单个写入者：以单线程运行 / SQLite: running a single worker loop", err=True)
        concurrency = 1
    stop_requested: list[int] = []
    signal.signal(signal.SIGTERM, lambda number, _frame: stop_requested.append(number))
    signal.signal(signal.SIGINT, lambda number, _frame: stop_requested.append(number))
    click.echo(f"worker 已启动（{concurrency} 线程）" + ("（burst）" if burst else ""), err=True)
    ran = run_workers(
        rt, concurrency, should_stop=lambda: bool(stop_requested), poll_s=poll_s, burst=burst, lease_s=lease_s
    )
    click.echo(f"worker 已停止，共执行 {ran} 个任务", err=True)


@click.command("serve-all")
@click.option("--port", "web_port", default=5000, show_default=True)
@click.option("--sim-port", default=5001, show_default=True)
def serve_all_command(web_port: int, sim_port: int) -> None:
    """Web app, worker and bank simulator together; Ctrl-C stops all three."""
    from app.platform.supervisor import run_platform

    sys.exit(run_platform(web_port, sim_port, lambda line: click.echo(line, err=True)))


@ledger_cli.command("check")
def ledger_check() -> None:
    """Exit 1 unless debits equal credits, balances match their entries and no flagged account is broken."""
    from app.ledger.repo import check_ledger

    with _rt().db.uow() as uow:
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
    """Balance of ACCOUNT now, or as it was at a past instant."""
    from app.domain.money import format_yuan
    from app.ledger.repo import LedgerRepository, balance_at

    with _rt().db.uow() as uow:
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
    """The latest entries of ACCOUNT with the balance after each."""
    from app.domain.ledger import TRANSFER_LABELS
    from app.domain.money import format_yuan
    from app.ledger.repo import history

    with _rt().db.uow() as uow:
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
    """日切: opening balance, debits, credits and closing balance of ACCOUNT for one day."""
    from app.domain.money import format_yuan
    from app.ledger.repo import cutoff

    with _rt().db.uow() as uow:
        report = cutoff(uow.session, account, day.date(), SHANGHAI)
    click.echo(
        f"{account} {report.day} 期初 {format_yuan(report.opening_fen)} 借方 {format_yuan(report.debits_fen)}"
        f" 贷方 {format_yuan(report.credits_fen)} 期末 {format_yuan(report.closing_fen)}"
    )


@ledger_cli.command("fold")
def ledger_fold() -> None:
    """Fold hot accounts' buffered postings and void expired holds now (the worker does it every few seconds)."""
    from app.ledger.maintenance import maintain

    folded, voided = maintain(_rt())
    click.echo(f"已合并热点分录 {folded} 条，已解冻超时冻结 {voided} 笔")


@ledger_cli.command("alert-threshold")
@click.argument("account")
@click.argument("yuan", required=False)
@click.option("--off", is_flag=True, help="stop watching the account")
def ledger_alert_threshold(account: str, yuan: str | None, off: bool) -> None:
    """Alert when ACCOUNT's projected balance falls below YUAN (a hot account only)."""
    from app.domain.money import format_yuan, parse_yuan
    from app.ledger.repo import LedgerRepository

    if off == (yuan is not None):
        raise click.UsageError("请给出预警金额（元），或使用 --off")
    with _rt().db.uow() as uow:
        row = LedgerRepository(uow.session).account(account)
        if not row.hot:
            raise click.ClickException(f"{account} 不是热点账户，无需预警")
        row.alert_below_fen = None if off else parse_yuan(yuan or "")
        uow.commit()
        threshold = row.alert_below_fen
    click.echo(f"{account} 预警已关闭" if threshold is None else f"{account} 预警线：{format_yuan(threshold)}")


@ledger_cli.command("alerts")
def ledger_alerts() -> None:
    """Open low-balance alerts of hot accounts; exit 1 when there is any (for scripts and cron)."""
    from app.domain.money import format_yuan
    from app.ledger.alerts import open_alerts

    alerts = open_alerts(_rt())
    for alert in alerts:
        local = alert.raised_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"⚠ {alert.account_code} 预计余额 {format_yuan(alert.projected_fen)}"
            f" 低于 {format_yuan(alert.threshold_fen)}（{local} 起）"
        )
    if alerts:
        sys.exit(1)
    click.echo("无预警")


def register_cli(app: Flask) -> None:
    from app.agreements.cli import agreement_cli
    from app.audit.cli import audit_cli
    from app.bank_inbox.cli import reconcile_command
    from app.bank_inbox.suspense_cli import suspense_cli
    from app.cities.cli import city_cli, workflow_cli
    from app.cities.publishing_cli import city_draft  # noqa: F401 - adds the publishing commands to city_cli
    from app.deals.cli import contracts_cli
    from app.pii.cli import pii_cli
    from app.tools.banksim.cli import bank_sim

    for group in (keys_cli, db_cli, user_cli, ledger_cli, city_cli, workflow_cli, suspense_cli):
        app.cli.add_command(group)
    app.cli.add_command(audit_cli)
    app.cli.add_command(agreement_cli)
    app.cli.add_command(pii_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(serve_all_command)
    app.cli.add_command(reconcile_command)
    app.cli.add_command(bank_sim, "bank-sim")
    app.cli.add_command(contracts_cli)
