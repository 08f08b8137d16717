"""`tsa` click group: `serve` the timestamp authority in its own process, make its `keys`, `stamp` a file.

Registered by the platform as `flask tsa`; also runs as `python -m app.tsa` (no platform app, no database)."""

from __future__ import annotations

import os
from pathlib import Path

import click
from asn1crypto import pem, x509
from werkzeug.serving import make_server

from app.crypto import sm3
from app.platform.config import instance_path_from_env
from app.platform.errors import CryptoError, CunguanError
from app.tsa.authority import DEFAULT_ACCURACY_MS, open_authority
from app.tsa.client import timestamp
from app.tsa.identity import CERTIFICATE_FILE, ensure_tsa_identity
from app.tsa.protocol import DEFAULT_POLICY_OID
from app.tsa.server import TsaApp


def _default_folder() -> str:
    return os.environ.get("CUNGUAN_TSA_KEYS_DIR") or str(instance_path_from_env() / "tsa")


_FOLDER_OPTION = click.option(
    "--keys-dir",
    default=_default_folder,
    show_default="<CUNGUAN_TSA_KEYS_DIR 或 CUNGUAN_INSTANCE_PATH/tsa>",
    type=click.Path(file_okay=False, path_type=Path),
    help="时间戳服务自己的目录：私钥、证书、序列号（缺少的自动生成）",
)


@click.group("tsa", help="可信时间戳服务（RFC 3161，SM2/SM3）。")
def tsa_cli() -> None:
    """Group only; see the commands."""


@tsa_cli.command("serve", help="启动时间戳服务（独立进程，单进程多线程）。")
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址")
@click.option("--port", default=5002, show_default=True, type=click.IntRange(0, 65535))
@_FOLDER_OPTION
@click.option(
    "--policy",
    default=lambda: os.environ.get("CUNGUAN_TSA_POLICY") or DEFAULT_POLICY_OID,
    show_default="CUNGUAN_TSA_POLICY 或本平台的策略 OID",
    help="时间戳策略 OID",
)
@click.option("--accuracy-ms", default=DEFAULT_ACCURACY_MS, show_default=True, type=click.IntRange(1, 60_000))
def serve(host: str, port: int, keys_dir: Path, policy: str, accuracy_ms: int) -> None:
    authority = open_authority(keys_dir, policy, accuracy_ms)
    server = make_server(host, port, TsaApp(authority), threaded=True)
    click.echo(
        f"时间戳服务已启动：http://{host}:{server.port}/ （策略 {policy}，精度 {accuracy_ms} 毫秒，"
        f"证书 {keys_dir / CERTIFICATE_FILE}，已签发序列号至 {authority.serials.last()}）",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("正在停止时间戳服务……", err=True)
    finally:
        server.server_close()


@tsa_cli.command("keys", help="生成时间戳服务的私钥与证书（已有的保留），打印证书路径。")
@_FOLDER_OPTION
def keys(keys_dir: Path) -> None:
    ensure_tsa_identity(keys_dir)
    click.echo(str(keys_dir / CERTIFICATE_FILE))


@tsa_cli.command(
    "certify", help="由平台 CA 为时间戳服务签发证书（扩展密钥用途 timeStamping），替换自签名证书；重启服务后生效。"
)
@_FOLDER_OPTION
@click.option(
    "--ca-keys-dir",
    default=lambda: os.environ.get("CUNGUAN_KEYS_DIR") or str(instance_path_from_env() / "keys"),
    show_default="<CUNGUAN_KEYS_DIR 或 CUNGUAN_INSTANCE_PATH/keys>",
    type=click.Path(file_okay=False, path_type=Path),
    help="平台密钥目录（其中 ca/ 为平台 CA）",
)
@click.option("--renew", is_flag=True, help="即使已有平台 CA 签发的有效证书也重新签发")
def certify(keys_dir: Path, ca_keys_dir: Path, renew: bool) -> None:
    from app.tsa.certify import certify_tsa  # the platform CA: only this command needs it

    try:
        issued = certify_tsa(ca_keys_dir, keys_dir, renew=renew)
    except CunguanError as error:
        click.echo(f"错误：{error.message} {error.details or ''}", err=True)
        raise SystemExit(1) from None
    if issued is None:
        click.echo(f"时间戳服务已有平台 CA 签发的有效证书：{keys_dir / CERTIFICATE_FILE}（--renew 重新签发）")
        return
    certificate = x509.Certificate.load(pem.unarmor(issued)[2])
    click.echo(
        f"时间戳服务证书已签发：序列号 {certificate.serial_number:X}，"
        f"有效期至 {certificate.not_valid_after.isoformat()}，已写入 {keys_dir / CERTIFICATE_FILE}（请重启 tsa serve）"
    )


@tsa_cli.command("stamp", help="为文件的 SM3 摘要申请时间戳，把时间戳令牌（DER）写入 OUTPUT。")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--url", envvar="CUNGUAN_TSA_URL", required=True, help="时间戳服务地址（环境变量 CUNGUAN_TSA_URL）")
def stamp(file: Path, output: Path, url: str) -> None:
    try:
        token = timestamp(url, sm3(file.read_bytes()))
    except CryptoError as error:
        click.echo(f"错误：{error.message} {error.details or ''}", err=True)
        raise SystemExit(1) from None
    output.write_bytes(token)
    click.echo(f"时间戳令牌已写入 {output}")
