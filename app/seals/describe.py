"""A seal in words, for `flask ca show-seal` (Chinese, times in Asia/Shanghai). Pure: no Flask, no files."""

from __future__ import annotations

from datetime import datetime

from app.domain.timezone import SHANGHAI
from app.pki.certificates import load_certificate, serial_hex
from app.pki.chain import TrustStore
from app.pki.names import display_name
from app.seals.seal import SEAL_TYPES, Seal, maker_signature_valid


def _local(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S（北京时间）")


def describe_seal(seal: Seal, makers: TrustStore | None) -> list[str]:
    """One line per fact; `makers`: the anchors the maker is checked against (None: not checked)."""
    signers = [load_certificate(der) for der in seal.signer_certificates]
    maker_state = "有效" if maker_signature_valid(seal) else "无效（印章被篡改或伪造）"
    picture = seal.picture
    lines = [
        "电子印章（GB/T 38540-2019，SES_Seal 第 4 版）",
        f"印章名称：{seal.name}",
        f"印章标识（esID）：{seal.es_id}",
        f"印章类型：{SEAL_TYPES.get(seal.seal_type, f'未知（{seal.seal_type}）')}",
        f"制章时间：{_local(seal.created)}",
        f"有效期：{_local(seal.valid_start)} 至 {_local(seal.valid_end)}",
        f"制章者：{seal.maker_name}（证书序列号 {serial_hex(seal.maker)}）",
        f"制章者签名：{maker_state}",
        f"印章图像：{picture.kind}，{picture.width_mm}×{picture.height_mm} 毫米，{len(picture.data)} 字节",
    ]
    lines += [f"签章者证书：{display_name(item.subject)}（序列号 {serial_hex(item)}）" for item in signers]
    if makers is not None:
        trusted = seal.maker.ca and makers.is_anchor(seal.maker)
        lines.append("制章者是否为本平台 CA：" + ("是" if trusted else "否（不受信任）"))
    return lines
