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
    """生成平台签章密钥与证书、平台电子印章（GB/T 38540）、个人信息密钥和审计 MAC 密钥（已有则跳过；不生成银行密钥）。

    Create the platform seal key and certificate, its GB/T 38540 seal, the PII keys and the audit MAC key, where
    missing (no bank key: the banks keep theirs; import their certificates with `flask keys import-bank`)."""
    from app.audit.mac_key import mac_key
    from app.crypto.keys import ensure_keys
    from app.db.pii import keyring

    config = current_app.extensions["cunguan.config"]
    ensure_keys(config.keys_dir)
    keyring.configure_from_folder(config.keys_dir)  # the runtime's KeyStore reads its files when asked
    mac_key.configure_from_folder(config.keys_dir)
    click.echo(f"密钥目录：{config.keys_dir}")
    for leftover in sorted((config.keys_dir / "banks").glob("*.key.pem")):
        click.echo(f"警告：平台不应持有银行私钥，请移除 {leftover}（银行私钥只在银行/模拟器一方）", err=True)


@keys_cli.command("import-bank")
@click.argument("bank_code", required=False)
@click.option("--cert", "certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="银行证书")
@click.option(
    "--from-dir",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="导入目录中每家已配置银行的证书 CODE.cert.pem（如银行模拟器的密钥目录）",
)
@click.option("--from-config", "from_config", is_flag=True, help="导入银行配置文件（bank_configs/）所附的证书")
def keys_import_bank(bank_code: str | None, certificate: Path | None, folder: Path | None, from_config: bool) -> None:
    """导入银行的签章证书与公钥（BANK_CODE --cert FILE；--from-dir DIR：目录中全部已配置银行；
    --from-config：银行配置文件所附证书）；平台从不持有银行私钥。

    Keep a bank's seal certificate and public key (BANK_CODE --cert FILE), every configured bank's from a
    folder (--from-dir DIR), or those the bank config files carry (--from-config). The platform never holds a
    bank's private key."""
    from app.banks.registry import configured_banks
    from app.crypto.keys import import_bank_certificate
    from app.platform.errors import CunguanError

    config = current_app.extensions["cunguan.config"]
    sources = (certificate is not None) + (folder is not None) + from_config
    if sources != 1 or (certificate is not None) != (bank_code is not None):
        raise click.UsageError(
            "用法：flask keys import-bank CODE --cert FILE，flask keys import-bank --from-dir DIR，"
            "或 flask keys import-bank --from-config"
        )
    wanted = {bank_code: certificate} if certificate is not None and bank_code is not None else {}
    if folder is not None:
        wanted = {code: folder / f"{code}.cert.pem" for code in sorted(config.banks)}
    unknown = sorted(code for code in wanted if code not in config.banks)
    missing = [str(path) for path in wanted.values() if not path.is_file()]
    if unknown or missing:
        click.echo(f"错误：未配置的银行 {unknown or ''} 缺少证书 {missing or ''}", err=True)
        sys.exit(1)
    contents = {code: path.read_bytes() for code, path in wanted.items()}
    if from_config:
        contents = {code: bank.certificate.encode() for code, bank in configured_banks().items() if bank.certificate}
    for code, content in contents.items():
        try:
            kept = import_bank_certificate(config.keys_dir, code, content)
        except CunguanError as error:
            click.echo(f"错误：{code}：{error.message}", err=True)
            sys.exit(1)
        click.echo(f"已导入银行 {code} 的证书：{kept}")
    if from_config and not contents:
        click.echo("银行配置文件均未附证书")


def alembic_config(database_url: str):  # type: ignore[no-untyped-def] - alembic.config.Config
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """执行数据库迁移，直到 REVISION（默认最新）。

    Apply migrations up to REVISION (default: head)."""
    from alembic import command

    url = current_runtime().db.url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
    click.echo("数据库已迁移到最新版本")


@click.command("worker")
@click.option("--burst", is_flag=True, help="run due jobs, then exit")
@click.option("--poll", "poll_s", default=0.5, show_default=True, help="seconds between polls when idle")
@click.option(
    "--concurrency",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="工作线程数（PostgreSQL；SQLite 总是 1）",
)
@click.option(
    "--per-bank",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="同一银行的任务最多同时执行几个：一家银行变慢只占用它自己的名额",
)
@click.option("--per-kind", default="", help="各任务类型的并发上限，如 open_virtual_account=2,submit_payout=4")
@click.option(
    "--lease",
    "lease_s",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.5),
    help="seconds a claimed job stays reserved; a dead worker's jobs are due again after this",
)
def worker_command(burst: bool, poll_s: float, concurrency: int, per_bank: int, per_kind: str, lease_s: float) -> None:
    """运行后台任务（银行请求等）直到停止；PostgreSQL 上 N 个线程并行领取任务，SQLite 只运行单线程。

    Run background jobs (bank requests) until stopped. On PostgreSQL, N threads claim jobs with
    SKIP LOCKED; SQLite has one writer at a time, so it runs a single loop whatever N says."""
    from app.queue.slots import parse_kind_limits
    from app.queue.worker import run_workers

    try:
        kind_limits = parse_kind_limits(per_kind)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--per-kind") from error
    rt = current_runtime()
    if concurrency > 1 and rt.db.url.startswith("sqlite"):
        click.echo("SQLite 只允许单个写入者：以单线程运行 / SQLite: running a single worker loop", err=True)
        concurrency = 1
    stop_requested: list[int] = []
    signal.signal(signal.SIGTERM, lambda number, _frame: stop_requested.append(number))
    signal.signal(signal.SIGINT, lambda number, _frame: stop_requested.append(number))
    click.echo(f"worker 已启动（{concurrency} 线程）" + ("（burst）" if burst else ""), err=True)
    ran = run_workers(
        rt,
        concurrency,
        should_stop=lambda: bool(stop_requested),
        poll_s=poll_s,
        burst=burst,
        lease_s=lease_s,
        per_bank=per_bank,
        per_kind=kind_limits,
    )
    click.echo(f"worker 已停止，共执行 {ran} 个任务", err=True)


@click.command("serve-all")
@click.option("--port", "web_port", default=5000, show_default=True)
@click.option("--sim-port", default=5001, show_default=True)
@click.option("--tsa-port", default=5002, show_default=True)
def serve_all_command(web_port: int, sim_port: int, tsa_port: int) -> None:
    """同时启动网站、worker、银行模拟器与时间戳服务；Ctrl-C 全部停止。

    Web app, worker, bank simulator and timestamp authority together; Ctrl-C stops them all."""
    from app.platform.supervisor import run_platform

    sys.exit(run_platform(web_port, sim_port, lambda line: click.echo(line, err=True), tsa_port))
