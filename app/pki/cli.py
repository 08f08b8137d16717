"""flask ca …: the platform CA's revocations, CRL, bank seal certificates and what it issued (app.pki.store).
The root and the platform's seal certificate are made by `flask keys init`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from flask import current_app

from app.platform.cli_base import CliGroup

ca_cli = CliGroup("ca", help="平台 CA：签发、吊销与证书吊销列表 / the platform CA")


def _keys_dir() -> Path:
    return Path(current_app.extensions["cunguan.config"].keys_dir)


@ca_cli.command("revoke")
@click.argument("serial")
@click.option(
    "--reason",
    required=True,
    help="吊销原因：unspecified, key_compromise, ca_compromise, affiliation_changed, superseded, "
    "cessation_of_operation, certificate_hold, privilege_withdrawn",
)
def ca_revoke(serial: str, reason: str) -> None:
    """吊销平台 CA 签发的证书（SERIAL 为十六进制序列号，与 openssl x509 -serial 及 agreement verify 的
    certificate_serial 相同），并立即写出新的证书吊销列表。

    Revoke a certificate the platform CA issued (hex SERIAL) and write a new CRL at once."""
    from app.pki.crl import REASONS
    from app.pki.store import crl_path, normalise_serial, revoke

    if reason not in REASONS:
        raise click.BadParameter(f"未知的吊销原因，可选：{', '.join(REASONS)}", param_hint="--reason")
    revocation = revoke(_keys_dir(), serial, reason)
    click.echo(
        f"已吊销证书 {normalise_serial(f'{revocation.serial:X}')}（原因：{revocation.reason_label}，"
        f"时间 {revocation.revoked_at.isoformat()}）；吊销列表：{crl_path(_keys_dir())}"
    )


@ca_cli.command("crl")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 365), help="nextUpdate 在几天后")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="另存一份到该文件（PEM）")
def ca_crl(days: int, out: Path | None) -> None:
    """签发新的证书吊销列表（X.509 v2 CRL，SM2 签名）到 ca/crl.pem；应在 nextUpdate 之前定期运行。

    Issue a new CRL (ca/crl.pem, next cRLNumber); run it before its nextUpdate (cron)."""
    from app.pki.store import revocations, write_crl

    path = write_crl(_keys_dir(), days=days)
    if out is not None:
        out.write_bytes(path.read_bytes())
    click.echo(f"证书吊销列表已更新：{out or path}（吊销 {len(revocations(_keys_dir()))} 张，{days} 天内更新）")


@ca_cli.command("issue-bank")
@click.argument("bank_code")
@click.option(
    "--request",
    "request_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="银行的 SM2 公钥（PEM），或银行用其私钥自签的证书（作为证书请求）",
)
@click.option("--legal-name", required=True, help="银行的法定名称")
@click.option("--uscc", required=True, help="银行的统一社会信用代码")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="签发的证书另存到该文件，交给银行")
@click.option(
    "--seal-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="银行的电子印章（GB/T 38540）另存到该文件，交给银行",
)
def ca_issue_bank(
    bank_code: str, request_file: Path, legal_name: str, uscc: str, out: Path | None, seal_out: Path | None
) -> None:
    """为银行自己的签章密钥签发证书（银行保留私钥），导入为该银行的证书，并为其制作电子印章（GB/T 38540）。

    Issue a seal certificate for the bank's own key (the bank keeps it), import it as the bank's certificate and
    make the bank's GB/T 38540 seal for it (banks/CODE.seal.der; --seal-out: a copy for the bank)."""
    from app.crypto.keys import import_bank_certificate
    from app.pki.names import Organization
    from app.pki.seals import issue_bank_seal
    from app.seals.issue import bank_seal_path, issue_seal, write_seal

    config = current_app.extensions["cunguan.config"]
    if bank_code not in config.banks:
        raise click.BadParameter(f"未配置的银行：{bank_code}", param_hint="BANK_CODE")
    issued = issue_bank_seal(_keys_dir(), request_file.read_bytes(), Organization(legal_name, uscc))
    kept = import_bank_certificate(_keys_dir(), bank_code, issued)
    seal = write_seal(bank_seal_path(_keys_dir() / "banks", bank_code), issue_seal(_keys_dir(), issued))
    for path, content in ((out, issued), (seal_out, seal.read_bytes())):
        if path is not None:
            path.write_bytes(content)
    click.echo(f"已为银行 {bank_code} 签发并导入签章证书：{kept}；电子印章：{seal}" + (f"；副本：{out}" if out else ""))


@ca_cli.command("issue-seal")
@click.option("--bank", "bank_code", help="为该银行（按已导入的证书）制作；缺省为平台自己的电子印章")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="电子印章另存到该文件")
def ca_issue_seal(bank_code: str | None, out: Path | None) -> None:
    """由平台 CA 重新制作电子印章（GB/T 38540 SES_Seal）：平台的（platform.seal.der）或某银行的
    （banks/CODE.seal.der），印章名称为证书中的单位名称，有效期与证书一致。

    Make a GB/T 38540 seal anew: the platform's, or a bank's for its imported certificate."""
    from app.crypto.keys import bank_certificate_path
    from app.seals.issue import bank_seal_path, issue_seal, platform_seal_path, write_seal

    folder = _keys_dir()
    if bank_code is None:
        certificate, target = folder / "platform.cert.pem", platform_seal_path(folder)
    else:
        certificate, target = bank_certificate_path(folder, bank_code), bank_seal_path(folder / "banks", bank_code)
    if not certificate.is_file():
        raise click.BadParameter(f"找不到证书：{certificate}", param_hint="--bank")
    seal = issue_seal(folder, certificate.read_bytes())
    write_seal(target, seal)
    if out is not None:
        out.write_bytes(seal)
    click.echo(f"已制作电子印章：{target}" + (f"；副本：{out}" if out else ""))


@ca_cli.command("show-seal")
@click.argument("seal_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ca_show_seal(seal_file: Path) -> None:
    """显示电子印章（GB/T 38540）的内容：名称、标识、有效期、制章者、签章者证书，并核对制章者签名及其是否为本平台 CA。

    Show a GB/T 38540 seal in Chinese and check its maker's signature and that the maker is this platform's CA."""
    from app.pki.store import trust_store
    from app.seals.describe import describe_seal
    from app.seals.seal import read_seal

    seal = read_seal(seal_file.read_bytes())
    for line in describe_seal(seal, trust_store(_keys_dir())):
        click.echo(line)


@ca_cli.command("list")
def ca_list() -> None:
    """列出平台 CA 签发的证书：序列号、主体、有效期、是否吊销。

    List the certificates the platform CA issued: serial, subject, validity, revocation."""
    from app.pki.certificates import load_certificate, serial_hex
    from app.pki.names import display_name
    from app.pki.store import ca_folder, revocations

    revoked = {item.serial: item for item in revocations(_keys_dir())}
    now = datetime.now(UTC)
    for path in sorted((ca_folder(_keys_dir()) / "issued").glob("*.pem")):
        certificate = load_certificate(path.read_bytes())
        state = "有效" if certificate.not_valid_before <= now <= certificate.not_valid_after else "不在有效期内"
        if certificate.serial_number in revoked:
            state = f"已吊销（{revoked[certificate.serial_number].reason_label}）"
        click.echo(
            f"{serial_hex(certificate)}\t{display_name(certificate.subject)}\t"
            f"{certificate.not_valid_before.date()} 至 {certificate.not_valid_after.date()}\t{state}"
        )


@ca_cli.command("issue-tsa")
@click.option(
    "--request",
    "request_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="时间戳服务的 SM2 公钥（PEM），或其用私钥自签的证书（如 TSA 目录中的 tsa.cert.pem）",
)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="证书写到该文件")
@click.option("--chain-out", type=click.Path(dir_okay=False, path_type=Path), help="根证书（证书链）写到该文件")
def ca_issue_tsa(request_file: Path, out: Path, chain_out: Path | None) -> None:
    """为时间戳服务（TSA）的密钥签发证书（扩展密钥用途 timeStamping，关键）。

    Issue the TSA's certificate for its key (extendedKeyUsage timeStamping, critical); --chain-out: the root."""
    from app.pki.seals import issue_tsa_certificate
    from app.pki.store import root_pem

    issued = issue_tsa_certificate(_keys_dir(), request_file.read_bytes())
    out.write_bytes(issued)
    if chain_out is not None:
        chain_out.write_bytes(root_pem(_keys_dir()))
    click.echo(f"已签发时间戳服务证书：{out}" + (f"；根证书：{chain_out}" if chain_out else ""))
