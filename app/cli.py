"""flask keys | db | user | worker | ledger | city | bank-sim commands."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.config import ROOT
from app.services.runtime import Runtime

keys_cli = AppGroup("keys", help="密钥管理 / key management")
db_cli = AppGroup("db", help="数据库迁移 / database migrations")
user_cli = AppGroup("user", help="用户管理 / users")
ledger_cli = AppGroup("ledger", help="账务 / ledger")
city_cli = AppGroup("city", help="城市配置 / city configs")


def _rt() -> Runtime:
    return current_app.extensions["cunguan.runtime"]


@keys_cli.command("init")
def keys_init() -> None:
    """Create the platform seal key and certificate, bank keys and the PII key, where missing."""
    from app.crypto.keys import ensure_keys
    from app.factory_runtime import build_runtime

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
    from app.services.users import ROLE_LABELS, create_demo_users

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
    from app.services.users import create_user

    create_user(_rt(), username, password, role, display_name)
    click.echo(f"已创建用户 {username}")


@user_cli.command("set-password")
@click.argument("username")
@click.password_option()
def user_set_password(username: str, password: str) -> None:
    from app.services.users import set_password

    set_password(_rt(), username, password)
    click.echo(f"已重设 {username} 的密码")


@click.command("worker")
@click.option("--burst", is_flag=True, help="run due jobs, then exit")
@click.option("--poll", "poll_s", default=0.5, show_default=True, help="seconds between polls when idle")
def worker_command(burst: bool, poll_s: float) -> None:
    """Run background jobs (bank requests) until stopped."""
    from app.worker import run_worker

    stop_requested: list[int] = []
    signal.signal(signal.SIGTERM, lambda number, _frame: stop_requested.append(number))
    signal.signal(signal.SIGINT, lambda number, _frame: stop_requested.append(number))
    click.echo("worker 已启动" + ("（burst）" if burst else ""), err=True)
    ran = run_worker(_rt(), should_stop=lambda: bool(stop_requested), poll_s=poll_s, burst=burst)
    click.echo(f"worker 已停止，共执行 {ran} 个任务", err=True)


@click.command("serve-all")
@click.option("--port", "web_port", default=5000, show_default=True)
@click.option("--sim-port", default=5001, show_default=True)
def serve_all_command(web_port: int, sim_port: int) -> None:
    """Web app, worker and bank simulator together; Ctrl-C stops all three."""
    from app.supervisor import run_platform

    sys.exit(run_platform(web_port, sim_port, lambda line: click.echo(line, err=True)))


@ledger_cli.command("check")
def ledger_check() -> None:
    """Exit 1 unless debits equal credits, balances match their entries and no flagged account is broken."""
    from app.db.ledger_repo import check_ledger

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


@city_cli.command("validate")
def city_validate() -> None:
    """Validate every city config; exit 1 on any error."""
    from app.errors import ConfigError

    failed = False
    for path in sorted((ROOT / "city_configs").glob("*.json")):
        try:
            _rt().cities.get(path.stem)
            click.echo(f"✓ {path.name}")
        except ConfigError as error:
            failed = True
            click.echo(f"✗ {path.name}: {error.message} {error.details}", err=True)
    if failed:
        sys.exit(1)


def register_cli(app: Flask) -> None:
    from app.banks.simulator.cli import bank_sim

    for group in (keys_cli, db_cli, user_cli, ledger_cli, city_cli):
        app.cli.add_command(group)
    app.cli.add_command(worker_command)
    app.cli.add_command(serve_all_command)
    app.cli.add_command(bank_sim, "bank-sim")
