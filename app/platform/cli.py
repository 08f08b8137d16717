"""flask keys init | db upgrade | worker | serve-all: the platform's own commands."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click
from flask import current_app

from app.platform.cli_base import CliGroup, current_runtime
from app.platform.config import ROOT

keys_cli = CliGroup("keys", help="密钥管理 / key management")
db_cli = CliGroup("db", help="数据库迁移 / database migrations")


@keys_cli.command("init")
def keys_init() -> None:
    """Create the platform seal key and certificate, bank keys and the PII key, where missing."""
    from app.crypto.keys import ensure_keys
    from app.db.pii import keyring

    config = current_app.extensions["cunguan.config"]
    ensure_keys(config.keys_dir, config.banks.keys())
    keyring.configure_from_folder(config.keys_dir)  # the runtime's KeyStore reads its files when asked
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

    url = current_runtime().db.url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
    click.echo("数据库已迁移到最新版本")


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

    rt = current_runtime()
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
