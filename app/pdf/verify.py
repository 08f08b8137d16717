"""Verify the signature inside a PDF: byte range, digest, SM2 signature, signer. Never raises on bad input."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from typing import Any

from asn1crypto import cms, pem, x509
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_verify, sm3

_HEX_STRING = re.compile(rb"<[0-9A-Fa-f]*>")


@dataclass(frozen=True)
class PdfSignatureReport:
    """`trusted` is True when no trusted certificate was given or the signer's certificate is that one."""

    signed: bool
    intact: bool = False
    covers_whole_file: bool = False
    signature_valid: bool = False
    trusted: bool = False
    signer_subject: str | None = None
    signing_time: datetime | None = None
    digest_algorithm: str | None = None
    signature_algorithm: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.signed and self.intact and self.covers_whole_file and self.signature_valid and self.trusted


def _signature_dictionaries(fields: Any) -> list[DictionaryObject]:
    """Values of signature fields, walking /Kids; each node once, since a hostile file may loop."""
    found: list[DictionaryObject] = []
    seen: set[int] = set()
    pending = list(fields or [])
    while pending:
        node = pending.pop(0).get_object()
        if not isinstance(node, DictionaryObject) or id(node) in seen:
            continue
        seen.add(id(node))
        value = node.get("/V")
        if node.get("/FT") == "/Sig" and value is not None:
            value = value.get_object()
            if isinstance(value, DictionaryObject) and "/ByteRange" in value and "/Contents" in value:
                found.append(value)
        pending.extend(node.get("/Kids") or [])
    return found


def _byte_range(signature: DictionaryObject) -> list[int] | None:
    try:
        values = [int(value) for value in signature["/ByteRange"]]
    except (TypeError, ValueError):
        return None
    return values if len(values) == 4 and min(values) >= 0 else None


def _last_signature(pdf_bytes: bytes) -> DictionaryObject | None:
    """The signature whose byte range reaches furthest into the file, i.e. the latest one."""
    reader = PdfReader(BytesIO(pdf_bytes), strict=False)
    form = reader.trailer["/Root"].get("/AcroForm")
    if form is None:
        return None
    signatures = _signature_dictionaries(form.get_object().get("/Fields"))

    def reach(signature: DictionaryObject) -> int:
        byte_range = _byte_range(signature)
        return byte_range[2] + byte_range[3] if byte_range else -1

    return max(signatures, key=reach, default=None)


def _covers_whole_file(pdf_bytes: bytes, byte_range: list[int], contents: bytes) -> bool:
    """Two ranges from the first to the last byte, with exactly the /Contents hex string between them."""
    _, first_length, second_start, second_length = byte_range
    gap = pdf_bytes[first_length:second_start]
    return (
        byte_range[0] == 0
        and 0 < first_length < second_start
        and second_start + second_length == len(pdf_bytes)
        and _HEX_STRING.fullmatch(gap) is not None
        and len(gap) % 2 == 0
        and bytes.fromhex(gap[1:-1].decode()) == contents
    )


def _attribute(signer: cms.SignerInfo, name: str) -> Any:
    for attribute in signer["signed_attrs"]:
        if attribute["type"].native == name:
            return attribute["values"][0].native
    return None


def _signer_certificate(signed_data: cms.SignedData, signer: cms.SignerInfo) -> x509.Certificate | None:
    sid = signer["sid"]
    if sid.name != "issuer_and_serial_number":
        return None
    wanted = sid.chosen
    for choice in signed_data["certificates"]:
        certificate = choice.chosen
        if (
            isinstance(certificate, x509.Certificate)
            and certificate.serial_number == wanted["serial_number"].native
            and certificate.issuer == wanted["issuer"]
        ):
            return certificate
    return None


def _subject_cn(certificate: x509.Certificate) -> str:
    return str(certificate.subject.native.get("common_name", certificate.subject.human_friendly))


def verify_pdf(pdf_bytes: bytes, trusted_certificate_pem: bytes | None = None) -> PdfSignatureReport:
    try:
        signature = _last_signature(pdf_bytes)
    except Exception as error:  # a malformed file is a finding, not a crash
        return PdfSignatureReport(signed=False, errors=[f"无法解析 PDF：{error}"])
    if signature is None:
        return PdfSignatureReport(signed=False, errors=["PDF 中没有签名"])
    try:
        return _check(pdf_bytes, signature, trusted_certificate_pem)
    except Exception as error:
        return PdfSignatureReport(signed=True, errors=[f"签名数据无法解析：{error}"])


def _check(pdf_bytes: bytes, signature: DictionaryObject, trusted_pem: bytes | None) -> PdfSignatureReport:
    errors: list[str] = []
    contents = signature["/Contents"].original_bytes
    byte_range = _byte_range(signature)
    covers = byte_range is not None and _covers_whole_file(pdf_bytes, byte_range, contents)
    if not covers:
        errors.append("签名范围未覆盖整个文件（签名后文件被追加或改动）")

    signed_data = cms.ContentInfo.load(contents)["content"]  # /Contents is zero-padded after the DER
    signer = signed_data["signer_infos"][0]
    digest_oid = signer["digest_algorithm"]["algorithm"].dotted
    signature_oid = signer["signature_algorithm"]["algorithm"].dotted
    sm_algorithms = (digest_oid, signature_oid) == (sm_oids.SM3_OID, sm_oids.SM2_WITH_SM3_OID)
    if not sm_algorithms:
        errors.append("签名算法不是 SM2/SM3")

    intact = False
    if byte_range is not None and sm_algorithms:
        _, first_length, second_start, second_length = byte_range
        signed_bytes = pdf_bytes[:first_length] + pdf_bytes[second_start : second_start + second_length]
        intact = _attribute(signer, "message_digest") == sm3(signed_bytes)
    if not intact:
        errors.append("文件内容与签名摘要不一致（文件被篡改）")

    certificate = _signer_certificate(signed_data, signer)
    signature_valid = False
    if certificate is None:
        errors.append("签名中缺少签名者证书")
    elif sm_algorithms:
        signed_attrs = signer["signed_attrs"].dump()
        signed_attrs_set = b"\x31" + signed_attrs[1:]  # [0] IMPLICIT in SignerInfo, a SET OF when signed
        public_key_pem = pem.armor("PUBLIC KEY", certificate.public_key.dump())
        signature_valid = sm2_verify(public_key_pem, signed_attrs_set, signer["signature"].native)
        if not signature_valid:
            errors.append("SM2 签名验证失败")

    trusted = certificate is not None and (trusted_pem is None or _der_of_pem(trusted_pem) == certificate.dump())
    if certificate is not None and not trusted:
        errors.append("签名证书不是受信任的平台签章证书")
    return PdfSignatureReport(
        signed=True,
        intact=intact,
        covers_whole_file=covers,
        signature_valid=signature_valid,
        trusted=trusted,
        signer_subject=_subject_cn(certificate) if certificate is not None else None,
        signing_time=_attribute(signer, "signing_time"),
        digest_algorithm=digest_oid,
        signature_algorithm=signature_oid,
        errors=errors,
    )


def _der_of_pem(certificate_pem: bytes) -> bytes | None:
    try:
        return pem.unarmor(certificate_pem)[2]
    except ValueError:
        return None
