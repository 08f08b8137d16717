"""flask agreement verify: signatures inside agreement PDFs (banks sign over the protocol: agreements.countersign)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from app.platform.cli_base import CliGroup, current_runtime

if TYPE_CHECKING:  # the PDF stack is imported when a command runs, not when the CLI starts
    from app.pdf.verify import PdfSignatureReport

agreement_cli = CliGroup("agreement", help="协议签章 / agreement signatures")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _trusted_time(report: PdfSignatureReport) -> str:
    stamp = report.timestamp
    if stamp is None:
        return "未附可信时间戳"
    if stamp.gen_time is None:
        return "时间戳无效"
    when = stamp.gen_time.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    kind = "文档时间戳" if report.document_timestamp else "可信时间"
    return f"{kind} {when}（北京时间，{stamp.authority}，序列号 {stamp.serial}）{'' if stamp.valid else '，时间戳无效'}"


def _verdict(reports: list[PdfSignatureReport]) -> str:
    """One sentence for the file: all valid and unchanged, or every problem (what was changed after signing named),
    each once."""
    if all(report.valid for report in reports):
        return f"签章全部有效（共 {len(reports)} 个签名），文件自每个签章签署后未被修改"
    problems = dict.fromkeys(item for report in reports for item in (*report.errors, *report.changes_after_signing))
    return f"签章无效：{'；'.join(problems) or '签名无效'}"


@agreement_cli.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--require-timestamp", is_flag=True, help="每个签名都必须带有效的可信时间戳")
@click.option(
    "--root",
    "root_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="离线验证：只信任此根证书，吊销状态取文件自带的验证数据（/DSS 中的 CRL），不读取本机密钥目录",
)
@click.option(
    "--crl",
    "crl_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="与 --root 同用：另以此证书吊销列表（如 CA 最新发布的 CRL）核对吊销状态（可多次）",
)
def agreement_verify(file: Path, require_timestamp: bool, root_file: Path | None, crl_files: tuple[Path, ...]) -> None:
    """验证协议 PDF 中的每个签章，以 JSON 输出签署方、时间、可信时间（时间戳服务、时间）、摘要、签名、覆盖范围，
    签署后文件是否被修改（unchanged）以及机构签章携带的电子印章（GB/T 38540）；全部有效时退出码为 0。

    Print, as JSON, every signature in FILE: signer, time, trusted time, digest, signature, coverage, whether the
    file is unchanged since; a verdict. Exit 0 only if all valid."""
    from app.agreements.service import verify_agreement_pdf
    from app.pdf.dss import embedded_trust
    from app.pdf.verify import verify_pdf_signatures

    if crl_files and root_file is None:
        raise click.UsageError("--crl 只能与 --root 同用（在线验证使用本机 CA 的吊销列表）")
    pdf = file.read_bytes()
    if root_file is None:
        reports = verify_agreement_pdf(current_runtime(), pdf, require_timestamp)
    else:  # signatures and timestamps alike through the given root, with the file's own CRLs and those given
        trust = embedded_trust(pdf, [root_file.read_bytes()], [path.read_bytes() for path in crl_files])
        reports = verify_pdf_signatures(pdf, trust, trust, require_timestamp)
    valid = all(report.valid for report in reports)
    verdict = _verdict(reports)
    signatures = [report.as_dict() for report in reports]
    click.echo(
        json.dumps(
            {"file": str(file), "valid": valid, "verdict": verdict, "signatures": signatures},
            ensure_ascii=False,
            indent=2,
        )
    )
    for number, report in enumerate(reports, 1):
        if report.signed:
            chain = f"，证书链 {' → '.join(report.certificate_chain)}" if report.certificate_chain else ""
            who = f"签章 {number}（{report.signer_subject or '—'}{chain}）"
            seal = report.seal.summary() if report.seal else report.seal_note
            click.echo(
                f"{who}：{_trusted_time(report)}；{report.unchanged_text}{f'；{seal}' if seal else ''}", err=True
            )
    click.echo(verdict, err=True)
    sys.exit(0 if valid else 1)
