"""Verify the signature inside a PDF: byte range, digest, SM2 signature, signer. Never raises on bad input."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from typing import Any

from asn1crypto import cms, pem, x509
from pypdf import PdfReader

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_verify, sm3


@dataclass(frozen=True)
class PdfSignatureReport:
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


def _last_signature(pdf_bytes: bytes) -> dict[str, Any] | None:
    reader = PdfReader(BytesIO(pdf_bytes), strict=False)
    form = reader.trailer["/Root"].get("/AcroForm")
    if form is None:
        return None
    found = None
    for reference in form.get_object().get("/Fields", []):
        field_object = reference.get_object()
        value = field_object.get("/V")
        if field_object.get("/FT") == "/Sig" and value is not None:
            found = value.get_object()
    return found


def _covers_whole_file(pdf_bytes: bytes, byte_range: list[int]) -> bool:
    if len(byte_range) != 4 or byte_range[0] != 0:
        return False
    _, first_length, second_start, second_length = byte_range
    gap = pdf_bytes[first_length:second_start]
    return (
        second_start + second_length == len(pdf_bytes)
        and gap.startswith(b"<")
        and gap.endswith(b">")
        and all(chr(c) in "0123456789abcdefABCDEF" for c in gap[1:-1])
    )


def _attribute(signer: cms.SignerInfo, name: str) -> Any:
    for attribute in signer["signed_attrs"]:
        if attribute["type"].native == name:
            return attribute["values"][0].native
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


def _check(pdf_bytes: bytes, signature: dict[str, Any], trusted_pem: bytes | None) -> PdfSignatureReport:
    errors: list[str] = []
    byte_range = [int(value) for value in signature["/ByteRange"]]
    covers = _covers_whole_file(pdf_bytes, byte_range)
    if not covers:
        errors.append("签名范围未覆盖整个文件（签名后文件被追加或改动）")
    _, first_length, second_start, second_length = byte_range
    signed_bytes = pdf_bytes[:first_length] + pdf_bytes[second_start : second_start + second_length]
    content = cms.ContentInfo.load(bytes(signature["/Contents"]).rstrip(b"\x00"))
    signed_data = content["content"]
    signer = signed_data["signer_infos"][0]
    certificate = signed_data["certificates"][0].chosen
    intact = _attribute(signer, "message_digest") == sm3(signed_bytes)
    if not intact:
        errors.append("文件内容与签名摘要不一致（文件被篡改）")
    attrs_der = signer["signed_attrs"].dump()
    signed_attrs_set = b"\x31" + attrs_der[1:]  # [0] IMPLICIT in SignerInfo, a SET when signed
    public_key_pem = pem.armor("PUBLIC KEY", certificate.public_key.dump())
    signature_valid = sm2_verify(public_key_pem, signed_attrs_set, signer["signature"].native)
    if not signature_valid:
        errors.append("SM2 签名验证失败")
    digest_oid = signer["digest_algorithm"]["algorithm"].dotted
    signature_oid = signer["signature_algorithm"]["algorithm"].dotted
    if (digest_oid, signature_oid) != (sm_oids.SM3_OID, sm_oids.SM2_WITH_SM3_OID):
        errors.append("签名算法不是 SM2/SM3")
    trusted = trusted_pem is None or pem.unarmor(trusted_pem)[2] == certificate.dump()
    if not trusted:
        errors.append("签名证书不是受信任的平台签章证书")
    return PdfSignatureReport(
        signed=True,
        intact=intact,
        covers_whole_file=covers,
        signature_valid=signature_valid and (digest_oid, signature_oid) == (sm_oids.SM3_OID, sm_oids.SM2_WITH_SM3_OID),
        trusted=trusted,
        signer_subject=_subject_cn(certificate),
        signing_time=_attribute(signer, "signing_time"),
        digest_algorithm=digest_oid,
        signature_algorithm=signature_oid,
        errors=errors,
    )
