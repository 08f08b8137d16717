"""flask audit verify | checkpoint: check the audit log (SM3 chain, HMAC-SM3 MACs, signed checkpoints); sign
the chain's head now."""

from __future__ import annotations

import sys

import click
from flask import current_app

from app.platform.cli_base import CliGroup
from app.platform.errors import ConfigError

audit_cli = CliGroup("audit", help="审计日志 / audit log")


@audit_cli.command("verify")
def audit_verify() -> None:
    """校验审计日志：重算每条记录的链式哈希与 MAC，并与签名检查点比对；有断点退出码 1，缺少 MAC 密钥退出码 2。

    Recompute every entry's chain hash and MAC and check the chain against the signed checkpoints; exit 1
    on any break, 2 when the MAC key is missing."""
    from app.audit.checkpoints import read_checkpoints
    from app.audit.log import verify

    rt = current_app.extensions["cunguan.runtime"]
    try:
        checked, breaks = verify(rt)
    except ConfigError as error:
        click.echo(f"✗ {error.message}", err=True)
        sys.exit(2)
    for problem in breaks:
        click.echo(f"✗ {problem}", err=True)
    if breaks:
        click.echo(f"审计日志校验失败：{len(breaks)} 处（共 {checked} 条）", err=True)
        sys.exit(1)
    points = read_checkpoints(rt)[0]
    reached = f"，已到达最新检查点（第 {points[-1].seq} 条）" if points else "，尚无检查点"
    click.echo(f"✓ 审计日志链完整，MAC 全部有效（共 {checked} 条）{reached}")


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """立即签署审计链的最新位置（检查点），写入检查点文件（worker 每几分钟自动执行）。

    Sign the chain's head now (the workers do it every few minutes) and add it to the checkpoint file."""
    from app.audit.checkpoints import checkpoint_path, write_checkpoint

    rt = current_app.extensions["cunguan.runtime"]
    try:
        point = write_checkpoint(rt, force=True)
    except ConfigError as error:
        click.echo(f"✗ {error.message}", err=True)
        sys.exit(2)
    if point is None:
        click.echo("无新的审计记录，未写入检查点")
        return
    click.echo(f"✓ 已写入检查点：第 {point.seq} 条 {point.hash[:16]}… → {checkpoint_path(rt)}")
