"""Verify the signature inside a PDF: byte range, digest, SM2 signature, signer. Never raises on bad input."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from io import BytesIO
from typing import Any

from asn1crypto import cms, pem, x509
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_verify, sm3
from app.pdf.revisions import changes_after_revision

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
    field_name: str | None = None
    # the revision this signature signed: its byte range is the file's first `revision_length` bytes but the
    # /Contents hole, and the SM3 digest of those bytes matches
    revision_intact: bool = False
    revision_length: int | None = None
    # for a signature followed by incremental updates: what they changed besides adding signatures
    changes_after_signing: list[str] = field(default_factory=list)
    # a later signature covers the whole file and everything in between only adds signatures
    superseded_cleanly: bool = False

    @property
    def valid(self) -> bool:
        base = self.signed and self.intact and self.revision_intact and self.signature_valid and self.trusted
        return base and (self.covers_whole_file or self.superseded_cleanly)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (the CLI and the web page show this)."""
        return {
            "field": self.field_name,
            "signer_subject": self.signer_subject,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "digest_matches": self.intact,
            "signature_verifies": self.signature_valid,
            "covers_whole_file": self.covers_whole_file,
            "revision_intact": self.revision_intact,
            "revision_length": self.revision_length,
            "changes_after_signing": self.changes_after_signing,
            "trusted_certificate": self.trusted,
            "digest_algorithm": self.digest_algorithm,
            "signature_algorithm": self.signature_algorithm,
            "valid": self.valid,
            "errors": self.errors,
        }


def _signature_dictionaries(fields: Any) -> list[tuple[str | None, DictionaryObject]]:
    """(field name, value) of signature fields, walking /Kids; each node once, since a hostile file may loop."""
    found: list[tuple[str | None, DictionaryObject]] = []
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
                found.append((str(node["/T"]) if "/T" in node else None, value))
        pending.extend(node.get("/Kids") or [])
    return found


def _byte_range(signature: DictionaryObject) -> list[int] | None:
    try:
        values = [int(value) for value in signature["/ByteRange"]]
    except (TypeError, ValueError):
        return None
    return values if len(values) == 4 and min(values) >= 0 else None


def _signatures(pdf_bytes: bytes) -> list[tuple[str | None, DictionaryObject]]:
    """Every signature, in the order of the revisions they sign (the latest last)."""
    reader = PdfReader(BytesIO(pdf_bytes), strict=False)
    form = reader.trailer["/Root"].get("/AcroForm")
    if form is None:
        return []
    signatures = _signature_dictionaries(form.get_object().get("/Fields"))

    def reach(item: tuple[str | None, DictionaryObject]) -> int:
        byte_range = _byte_range(item[1])
        return byte_range[2] + byte_range[3] if byte_range else -1

    return sorted(signatures, key=reach)


def _covers_revision(pdf_bytes: bytes, byte_range: list[int], contents: bytes) -> bool:
    """Two ranges from the first byte to the end of a revision, with exactly the /Contents hex string between."""
    _, first_length, second_start, second_length = byte_range
    gap = pdf_bytes[first_length:second_start]
    return (
        byte_range[0] == 0
        and 0 < first_length < second_start
        and second_start + second_length <= len(pdf_bytes)
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


TrustedCertificates = bytes | Sequence[bytes] | None


def verify_pdf(pdf_bytes: bytes, trusted_certificate_pem: TrustedCertificates = None) -> PdfSignatureReport:
    """The report on the latest signature (the one that must cover the whole file)."""
    reports = verify_pdf_signatures(pdf_bytes, trusted_certificate_pem)
    return reports[-1]


def verify_pdf_signatures(pdf_bytes: bytes, trusted: TrustedCertificates = None) -> list[PdfSignatureReport]:
    """One report per signature, oldest first; an unsigned or unreadable file gives one report saying so.

    `trusted`: the certificate(s) a signer must have; None accepts the certificate embedded in the file."""
    try:
        signatures = _signatures(pdf_bytes)
    except Exception as error:  # a malformed file is a finding, not a crash
        return [PdfSignatureReport(signed=False, errors=[f"无法解析 PDF：{error}"])]
    if not signatures:
        return [PdfSignatureReport(signed=False, errors=["PDF 中没有签名"])]
    trusted_ders = _trusted_ders(trusted)
    reports = []
    for name, signature in signatures:
        try:
            reports.append(_check(pdf_bytes, name, signature, trusted_ders))
        except Exception as error:
            reports.append(PdfSignatureReport(signed=True, field_name=name, errors=[f"签名数据无法解析：{error}"]))
    last_covers = reports[-1].covers_whole_file and reports[-1].intact
    for index, report in enumerate(reports):
        if report.covers_whole_file or report.revision_length is None or not report.revision_intact:
            continue
        try:
            changes = changes_after_revision(pdf_bytes[: report.revision_length], pdf_bytes)
        except Exception as error:
            changes = [f"无法比较签名后的更新：{error}"]
        clean = last_covers and not changes and index < len(reports) - 1
        errors = list(report.errors)
        if changes:
            errors.append("签名后追加的更新修改了文件内容")
        elif not clean:
            errors.append("签名范围未覆盖整个文件（签名后文件被追加或改动）")
        reports[index] = replace(report, changes_after_signing=changes, superseded_cleanly=clean, errors=errors)
    return reports


def _trusted_ders(trusted: TrustedCertificates) -> list[bytes] | None:
    if trusted is None:
        return None
    pems = [trusted] if isinstance(trusted, bytes) else list(trusted)
    return [der for der in map(_der_of_pem, pems) if der is not None]


def _check(
    pdf_bytes: bytes, name: str | None, signature: DictionaryObject, trusted_ders: list[bytes] | None
) -> PdfSignatureReport:
    errors: list[str] = []
    contents = signature["/Contents"].original_bytes
    byte_range = _byte_range(signature)
    revision = byte_range is not None and _covers_revision(pdf_bytes, byte_range, contents)
    revision_length = byte_range[2] + byte_range[3] if revision and byte_range is not None else None
    covers = revision_length == len(pdf_bytes)
    if not revision:
        errors.append("签名范围不是文件的一个完整版本")

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

    trusted = certificate is not None and (trusted_ders is None or certificate.dump() in trusted_ders)
    if certificate is not None and not trusted:
        errors.append("签名证书不是受信任的平台签章证书")
    return PdfSignatureReport(
        signed=True,
        field_name=name,
        revision_intact=revision and intact,
        revision_length=revision_length,
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
