"""flask audit verify: check the audit log's SM3 chain."""

from __future__ import annotations

import sys

import click
from flask import current_app

from app.platform.cli_base import CliGroup

audit_cli = CliGroup("audit", help="审计日志 / audit log")


@audit_cli.command("verify")
def audit_verify() -> None:
    """Recompute every entry's SM3 chain hash; exit 1 on any break."""
    from app.audit.log import verify

    checked, breaks = verify(current_app.extensions["cunguan.runtime"])
    for problem in breaks:
        click.echo(f"✗ {problem}", err=True)
    if breaks:
        click.echo(f"审计日志链断裂：{len(breaks)} 处（共 {checked} 条）", err=True)
        sys.exit(1)
    click.echo(f"✓ 审计日志链完整（共 {checked} 条）")
