"""flask evidence build / verify: a deal's evidence pack, and checking one offline (no database is read)."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import click

from app.evidence.verify import PackReport
from app.pki.certificates import is_self_issued, load_certificate
from app.pki.seals import legacy_platform_certificates
from app.pki.store import crl_path, root_certificate_path
from app.platform.cli_base import CliGroup, current_runtime

evidence_cli = CliGroup("evidence", help="证据包 / evidence packs")


def instance_trust(keys_dir: Path) -> list[bytes]:
    """The trust anchors of this instance's key folder for a pack's signature: the platform CA's root and, pinned,
    the old self-signed seal certificates (files only: nothing is read from the database)."""
    root, platform = root_certificate_path(keys_dir), keys_dir / "platform.cert.pem"
    anchors = [root.read_bytes()] if root.is_file() else []
    if platform.is_file() and is_self_issued(load_certificate(platform.read_bytes())):
        anchors.append(platform.read_bytes())  # a folder from before the CA: its seal certificate is the anchor
    return [*anchors, *legacy_platform_certificates(keys_dir)]


def print_report(report: PackReport) -> None:
    """The verdict in Chinese, one line per problem and note."""
    if report.valid:
        click.echo(f"证据包核验通过：存管单 {report.deal_no}，{report.members} 个文件，生成于 {report.built_at}")
        click.echo(f"  清单签名：{report.signature.signer if report.signature else '—'}（有效）")
        click.echo(f"  协议签章：{sum(len(items) for items in report.agreements.values())} 个，全部有效")
        click.echo(
            f"  银行签名已核验：{report.notifications_verified} 条；审计条目：{report.audit_entries} 条，链式哈希一致"
        )
    else:
        click.echo(f"证据包核验未通过（{len(report.problems)} 个问题）：")
        for problem in report.problems:
            click.echo(f"  ✘ {problem}")
    for note in report.notes:
        click.echo(f"  · {note}")


@evidence_cli.command("build")
@click.argument("deal_number")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="写入的 ZIP 文件")
def evidence_build(deal_number: str, output: Path) -> None:
    """生成存管单的证据包（ZIP）：已签署协议、时间线、审计条目、账务、银行通知、版本、证书与签名清单。

    Build DEAL_NUMBER's evidence pack into OUTPUT (audited, builder cli:<login>)."""
    from sqlalchemy import select

    from app.db.models import Deal
    from app.evidence.build import build_pack
    from app.platform.errors import NotFound

    rt = current_runtime()
    with rt.db.uow() as uow:
        deal_id = uow.session.scalar(select(Deal.id).where(Deal.deal_no == deal_number.strip()))
    if deal_id is None:
        raise NotFound("存管单不存在", details={"deal_no": deal_number})
    pack = build_pack(rt, deal_id, builder=f"cli:{getpass.getuser()}")
    output.write_bytes(pack)
    click.echo(f"证据包已生成：{output}（{len(pack)} 字节）")


@evidence_cli.command("verify")
@click.argument("pack", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--trust",
    "trust",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="受信任的平台证书或根证书（PEM，可多次）；默认本实例密钥目录中的平台证书",
)
@click.option(
    "--trust-tsa",
    "trust_tsa",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="受信任的时间戳服务证书（PEM，可多次）；默认 CUNGUAN_TSA_CERT，未设置时接受时间戳令牌内的证书",
)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出核验报告")
def evidence_verify(pack: Path, trust: tuple[Path, ...], trust_tsa: tuple[Path, ...], as_json: bool) -> None:
    """离线核验证据包：清单签名、每个文件的 SM3、协议签章、银行签名、审计链与固定版本；全部通过时退出码为 0。

    Verify PACK offline (no database). Exit 0 only when it is valid."""
    from app.evidence.verify import verify_pack

    rt = current_runtime()
    roots = [path.read_bytes() for path in trust] or instance_trust(rt.keys.folder)
    tsa = [path.read_bytes() for path in trust_tsa] or rt.trusted_tsa_certificates()
    current_crl = crl_path(rt.keys.folder)
    report = verify_pack(pack.read_bytes(), roots, tsa, [current_crl.read_bytes()] if current_crl.is_file() else [])
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print_report(report)
    sys.exit(0 if report.valid else 1)
