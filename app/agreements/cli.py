"""flask agreement verify: signatures inside agreement PDFs (banks sign over the protocol: agreements.countersign)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.platform.cli_base import CliGroup, current_runtime

agreement_cli = CliGroup("agreement", help="协议签章 / agreement signatures")


@agreement_cli.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--require-timestamp", is_flag=True, help="每个签名都必须带有效的可信时间戳")
def agreement_verify(file: Path, require_timestamp: bool) -> None:
    """验证协议 PDF 中的每个签章，以 JSON 输出签署方、时间、可信时间（时间戳服务、时间）、摘要、签名与覆盖范围；
    全部有效时退出码为 0。

    Print, as JSON, every signature in FILE: signer, time, trusted time, digest, signature, coverage. Exit 0 only if
    all valid."""
    from app.agreements.service import verify_agreement_pdf

    reports = verify_agreement_pdf(current_runtime(), file.read_bytes(), require_timestamp)
    valid = all(report.valid for report in reports)
    result = {"file": str(file), "valid": valid, "signatures": [report.as_dict() for report in reports]}
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    if valid:
        click.echo(f"签章全部有效（共 {len(reports)} 个签名）", err=True)
    else:
        problems = "；".join(error for report in reports for error in report.errors) or "签名无效"
        click.echo(f"签章无效：{problems}", err=True)
    sys.exit(0 if valid else 1)
