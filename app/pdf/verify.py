"""Verify the signatures inside a PDF: byte range, digest, SM2 signature, the signer's certificate path up to a
trust anchor (valid at the signing time, made for signing, not revoked: app.pki.chain), what later updates
changed, and the certification (DocMDP) of the first signature. Never raises on bad input."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from typing import Any

from asn1crypto import cms, pem, x509
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, IndirectObject

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_verify, sm3
from app.crypto.cms_signer import signed_attribute, signer_certificate
from app.pdf.revisions import changes_after_revision
from app.pdf.timestamps import document_timestamp_fields, signature_timestamp
from app.pki.certificates import serial_hex
from app.pki.chain import PathResult, TrustStore, validate_path
from app.platform.errors import CryptoError
from app.seals.verify import SealReport, check_signature_seal
from app.tsa.tokens import TimestampCheck

_HEX_STRING = re.compile(rb"<[0-9A-Fa-f]*>")
_PDF_DATE = re.compile(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:([Zz])|([+-])(\d{2})'?(\d{2})?'?)?")
DOCMDP_FORM_FILLING = 2  # DocMDP /P: later signatures and form filling only (the platform certifies with it)


@dataclass(frozen=True)
class PdfSignatureReport:
    """`trusted` is True when no trust anchor was given or the signer's certificate leads to one."""

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
    # the signer's certificate was valid at the signing time and allows signing (key usage)
    certificate_valid: bool = False
    # DocMDP /P of a certification signature (1: no change, 2: signing and form filling), None when not one
    certification_level: int | None = None
    certification_valid: bool = True
    # the signature's RFC 3161 timestamp (the trusted time), None when it has none
    timestamp: TimestampCheck | None = None
    document_timestamp: bool = False  # a /DocTimeStamp (the TSA's token over the file), not a signature
    # subject names from the signer's certificate up to the anchor (or as far as the path went)
    certificate_chain: list[str] = field(default_factory=list)
    certificate_serial: str | None = None  # upper-case hex, as `flask ca revoke` takes it
    revoked: bool = False
    # the GB/T 38540 seal the signature carries (app.seals.verify): None when it carries none; an organisation's
    # signature from before seals were required has none and the note says so
    seal: SealReport | None = None
    seal_note: str | None = None

    @property
    def valid(self) -> bool:
        base = self.signed and self.intact and self.revision_intact and self.signature_valid and self.trusted
        checks = (
            self.certificate_valid
            and self.certification_valid
            and (self.timestamp is None or self.timestamp.valid)
            and (self.seal is None or self.seal.valid)
        )
        return base and checks and (self.covers_whole_file or self.superseded_cleanly)

    @property
    def unchanged(self) -> bool:
        """What this signature signed is in the file byte for byte, and since then the file only gained later
        signatures (or nothing at all)."""
        settled = self.covers_whole_file or self.superseded_cleanly
        return self.signed and self.intact and self.revision_intact and not self.changes_after_signing and settled

    @property
    def unchanged_text(self) -> str:
        """Whether the document changed since this signature, in Chinese, for a reader."""
        if self.unchanged:
            return "签署后未被修改"
        if not (self.intact and self.revision_intact):
            return "已被修改：签名覆盖的内容与签署时不一致"
        if self.changes_after_signing:
            return f"签署后被修改：{'；'.join(self.changes_after_signing)}"
        return "签署后文件被追加或改动"

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (the CLI and the web page show this)."""
        return {
            "field": self.field_name,
            "kind": "document_timestamp" if self.document_timestamp else "signature",
            "signer_subject": self.signer_subject,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "digest_matches": self.intact,
            "signature_verifies": self.signature_valid,
            "covers_whole_file": self.covers_whole_file,
            "revision_intact": self.revision_intact,
            "revision_length": self.revision_length,
            "changes_after_signing": self.changes_after_signing,
            "unchanged": self.unchanged,
            "unchanged_text": self.unchanged_text,
            "trusted_certificate": self.trusted,
            "certificate_valid": self.certificate_valid,
            "certificate_chain": self.certificate_chain,
            "certificate_serial": self.certificate_serial,
            "revoked": self.revoked,
            "certification_level": self.certification_level,
            "digest_algorithm": self.digest_algorithm,
            "signature_algorithm": self.signature_algorithm,
            "trusted_time": self.timestamp.as_dict() if self.timestamp else None,
            "trusted_time_note": None if self.timestamp else "签名未附可信时间戳：签署时间仅为签署方自己的时钟",
            "seal": self.seal.as_dict() if self.seal else None,
            "seal_note": self.seal_note,
            "valid": self.valid,
            "errors": self.errors,
        }


Signature = tuple[str | None, DictionaryObject]


def _signature_dictionaries(fields: Any) -> list[Signature]:
    """(field name, value) of signature fields, walking /Kids; each node once, since a hostile file may loop."""
    found: list[Signature] = []
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


def _signatures(pdf_bytes: bytes) -> tuple[list[Signature], Any]:
    """Every signature, in the order of the revisions they sign (the latest last), and the catalog's
    /Perms /DocMDP entry (the certification signature it names), if any."""
    reader = PdfReader(BytesIO(pdf_bytes), strict=False)
    catalog = reader.trailer["/Root"]
    permissions = catalog.get("/Perms")
    permissions = permissions.get_object() if permissions is not None else None
    has_docmdp = isinstance(permissions, DictionaryObject) and "/DocMDP" in permissions
    certified = permissions.raw_get("/DocMDP") if has_docmdp else None
    form = catalog.get("/AcroForm")
    if form is None:
        return [], certified
    signatures = _signature_dictionaries(form.get_object().get("/Fields"))

    def reach(item: Signature) -> int:
        byte_range = _byte_range(item[1])
        return byte_range[2] + byte_range[3] if byte_range else -1

    return sorted(signatures, key=reach), certified


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


def _native(value: Any) -> Any:
    return None if value is None else value.native


def _subject_cn(certificate: x509.Certificate) -> str:
    return str(certificate.subject.native.get("common_name", certificate.subject.human_friendly))


TrustedCertificates = bytes | Sequence[bytes] | TrustStore | None


def verify_pdf(pdf_bytes: bytes, trusted_certificate_pem: TrustedCertificates = None) -> PdfSignatureReport:
    """The report on the latest signature (the one that must cover the whole file)."""
    reports = verify_pdf_signatures(pdf_bytes, trusted_certificate_pem)
    return reports[-1]


def verify_pdf_signatures(
    pdf_bytes: bytes,
    trusted: TrustedCertificates = None,
    trusted_tsa: TrustedCertificates = None,
    require_timestamp: bool = False,
) -> list[PdfSignatureReport]:
    """One report per signature, oldest first; an unsigned or unreadable file gives one report saying so.

    `trusted`: the trust anchors (PEM: the platform root, or certificates pinned one by one) or a TrustStore
    (anchors and CRLs, app.pki.store.trust_store); the signer's certificate must be an anchor or lead to one.
    None accepts the certificate embedded in the file.
    `trusted_tsa`: likewise for the TSA of signature timestamps; `require_timestamp`: a signature without one fails."""
    try:
        signatures, certified = _signatures(pdf_bytes)
    except Exception as error:  # a malformed file is a finding, not a crash
        return [PdfSignatureReport(signed=False, errors=[f"无法解析 PDF：{error}"])]
    if not signatures:
        return [PdfSignatureReport(signed=False, errors=["PDF 中没有签名"])]
    trust, tsa_trust = _trust_store(trusted), _trust_store(trusted_tsa)
    reports = []
    for name, signature in signatures:
        try:
            reports.append(_check(pdf_bytes, name, signature, trust, (tsa_trust, require_timestamp)))
        except Exception as error:
            reports.append(PdfSignatureReport(signed=True, field_name=name, errors=[f"签名数据无法解析：{error}"]))
    reports = _check_certification(reports, [signature for _, signature in signatures], certified)
    last_covers = reports[-1].covers_whole_file and reports[-1].intact
    for index, report in enumerate(reports):
        if report.covers_whole_file or report.revision_length is None or not report.revision_intact:
            continue
        try:
            changes = changes_after_revision(pdf_bytes[: report.revision_length], pdf_bytes)
        except Exception as error:
            changes = [f"无法比较签名后的更新：{error}"]
        if report.certification_level == 1:
            changes.insert(0, "认证签名（DocMDP P=1）不允许签署后的任何改动，文件却被追加了更新")
        clean = last_covers and not changes and index < len(reports) - 1
        errors = list(report.errors)
        if changes:
            errors.append("签名后追加的更新修改了文件内容")
        elif not clean:
            errors.append("签名范围未覆盖整个文件（签名后文件被追加或改动）")
        reports[index] = replace(report, changes_after_signing=changes, superseded_cleanly=clean, errors=errors)
    return reports


def require_verified_signatures(pdf_bytes: bytes, trusted: TrustedCertificates = None) -> None:
    """Before a signature is added to `pdf_bytes`: every signature it already has must verify, and nothing but
    signatures may have been added after them (CryptoError PDF_SIGNATURE_BROKEN otherwise); a file certified
    with DocMDP P=1 takes no further signature (PDF_NO_CHANGES_ALLOWED). A file without signatures passes."""
    reports = verify_pdf_signatures(pdf_bytes, trusted)
    if not reports[0].signed:
        return
    if reports[0].certification_level == 1:
        raise CryptoError("文件经认证签名（DocMDP P=1）禁止任何改动，不能追加签名", code="PDF_NO_CHANGES_ALLOWED")
    broken = [report for report in reports if not report.valid]
    if broken:
        raise CryptoError(
            "文件中已有的签名未通过验证或签署后文件被改动，拒绝追加签名",
            code="PDF_SIGNATURE_BROKEN",
            details=[
                {"field": report.field_name, "errors": report.errors, "changes": report.changes_after_signing}
                for report in broken
            ],
        )


def _docmdp_level(signature: DictionaryObject) -> int | None:
    """/P of the signature's DocMDP transform (2 when absent, as ISO 32000 says; 0 when unreadable), None when
    it certifies nothing."""
    for reference in signature.get("/Reference") or []:
        reference = reference.get_object()
        if isinstance(reference, DictionaryObject) and reference.get("/TransformMethod") == "/DocMDP":
            parameters = reference.get("/TransformParams")
            parameters = parameters.get_object() if parameters is not None else DictionaryObject()
            try:
                return int(parameters.get("/P", DOCMDP_FORM_FILLING))
            except (TypeError, ValueError):
                return 0
    return None


def _object_key(value: Any) -> tuple[int, int] | None:
    reference = value if isinstance(value, IndirectObject) else getattr(value, "indirect_reference", None)
    return (reference.idnum, reference.generation) if reference is not None else None


def _check_certification(
    reports: list[PdfSignatureReport], signatures: list[DictionaryObject], certified: Any
) -> list[PdfSignatureReport]:
    """A certification signature (DocMDP) is the first one, is the one the catalog's /Perms /DocMDP names, and
    has /P 1, 2 or 3; a /Perms /DocMDP naming no certification signature is reported on the first signature."""
    certified_key = _object_key(certified) if certified is not None else None
    checked = []
    for index, (report, signature) in enumerate(zip(reports, signatures, strict=True)):
        level = _docmdp_level(signature)
        named = certified_key is not None and _object_key(signature) == certified_key
        errors = []
        if level is not None and index > 0:
            errors.append("认证签名（DocMDP）必须是文件的第一个签名")
        if level is not None and not named:
            errors.append("文档目录的 /Perms /DocMDP 未指向认证签名")
        if level is not None and level not in (1, 2, 3):
            errors.append("认证签名的 DocMDP 权限 /P 无效")
        checked.append(
            replace(report, certification_level=level, certification_valid=not errors, errors=report.errors + errors)
        )
    names_a_certification = any(
        _object_key(signature) == certified_key and report.certification_level is not None
        for report, signature in zip(checked, signatures, strict=True)
    )
    if certified is not None and not names_a_certification:
        first = checked[0]
        errors = [*first.errors, "文档目录的 /Perms /DocMDP 未指向文件中的认证签名"]
        checked[0] = replace(first, certification_valid=False, errors=errors)
    return checked


def _parse_pdf_date(value: Any) -> datetime | None:
    """A PDF date (D:YYYYMMDDHHmmSSOHH'mm'); None when absent or malformed."""
    match = _PDF_DATE.fullmatch(str(value)) if value is not None else None
    if match is None:
        return None
    year, month, day, hour, minute, second, _, sign, offset_hours, offset_minutes = match.groups()
    offset = timedelta(hours=int(offset_hours or 0), minutes=int(offset_minutes or 0))
    try:
        return datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=timezone(-offset if sign == "-" else offset),
        ).astimezone(UTC)
    except ValueError:
        return None


def _trust_store(trusted: TrustedCertificates) -> TrustStore | None:
    if trusted is None or isinstance(trusted, TrustStore):
        return trusted
    return TrustStore.of([trusted] if isinstance(trusted, bytes) else list(trusted))


def _path(
    signed_data: cms.SignedData, certificate: x509.Certificate, trust: TrustStore | None, at: list[datetime]
) -> PathResult:
    """The signer's certificate path: to the given anchors, or - without any - the embedded certificate alone."""
    others = [
        choice.chosen
        for choice in signed_data["certificates"]
        if isinstance(choice.chosen, x509.Certificate) and choice.chosen.dump() != certificate.dump()
    ]
    return validate_path(certificate, others, trust or TrustStore((certificate,)), at=at)


def _check(
    pdf_bytes: bytes,
    name: str | None,
    signature: DictionaryObject,
    trust: TrustStore | None,
    timestamps: tuple[TrustStore | None, bool] = (None, False),
) -> PdfSignatureReport:
    errors: list[str] = []
    contents = signature["/Contents"].original_bytes
    byte_range = _byte_range(signature)
    revision = byte_range is not None and _covers_revision(pdf_bytes, byte_range, contents)
    revision_length = byte_range[2] + byte_range[3] if revision and byte_range is not None else None
    covers = revision_length == len(pdf_bytes)
    if not revision:
        errors.append("签名范围不是文件的一个完整版本")
    signed_bytes = None
    if byte_range is not None:
        signed_bytes = pdf_bytes[: byte_range[1]] + pdf_bytes[byte_range[2] : byte_range[2] + byte_range[3]]
    if signature.get("/SubFilter") == "/ETSI.RFC3161":  # a /DocTimeStamp: the TSA's token over the file
        found = document_timestamp_fields(contents, signed_bytes, timestamps[0])
        intact, errors = found.pop("intact"), errors + found.pop("errors")
        return PdfSignatureReport(
            signed=True,
            field_name=name,
            intact=intact,
            revision_intact=revision and intact,
            **found,
            errors=errors,
            revision_length=revision_length,
            covers_whole_file=covers,
        )

    signed_data = cms.ContentInfo.load(contents)["content"]  # /Contents is zero-padded after the DER
    signer = signed_data["signer_infos"][0]
    digest_oid = signer["digest_algorithm"]["algorithm"].dotted
    signature_oid = signer["signature_algorithm"]["algorithm"].dotted
    sm_algorithms = (digest_oid, signature_oid) == (sm_oids.SM3_OID, sm_oids.SM2_WITH_SM3_OID)
    if not sm_algorithms:
        errors.append("签名算法不是 SM2/SM3")

    intact = False
    if signed_bytes is not None and sm_algorithms:
        intact = _native(signed_attribute(signer, "message_digest")) == sm3(signed_bytes)
    if not intact:
        errors.append("文件内容与签名摘要不一致（文件被篡改）")

    certificate = signer_certificate(signed_data, signer)
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

    signing_time = _native(signed_attribute(signer, "signing_time"))
    stated_times = [moment for moment in (signing_time, _parse_pdf_date(signature.get("/M"))) if moment is not None]
    timestamp = signature_timestamp(signer, timestamps[0])
    if timestamp is None and timestamps[1]:
        timestamp = TimestampCheck(errors=["签名没有可信时间戳（缺失）"])
    if timestamp is not None:
        errors.extend(f"时间戳：{error}" for error in timestamp.errors)
        stated_times += [timestamp.gen_time] if timestamp.gen_time is not None else []
    path = _path(signed_data, certificate, trust, stated_times) if certificate is not None else None
    trusted = path is not None and path.trusted
    if path is not None and not path.trusted:
        errors.append(path.untrusted_reason or "签名证书不受信任")
    certificate_problems = path.problems if path is not None else ["签名中缺少签名者证书"]
    if path is not None and not stated_times:
        certificate_problems = ["签名未注明签署时间，无法核对证书有效期", *certificate_problems]
    errors.extend(problem for problem in certificate_problems if problem not in errors)
    seal, seal_note = None, None
    if certificate is not None:
        trusted_time = timestamp.gen_time if timestamp is not None and timestamp.valid else None
        seal, seal_note = check_signature_seal(signer, certificate, trust, trusted_time or signing_time)
        errors.extend(f"电子印章：{error}" for error in (seal.errors if seal else []))
    return PdfSignatureReport(
        signed=True,
        field_name=name,
        revision_intact=revision and intact,
        revision_length=revision_length,
        intact=intact,
        covers_whole_file=covers,
        signature_valid=signature_valid,
        trusted=trusted,
        certificate_valid=not certificate_problems,
        certificate_chain=path.path_names if path is not None else [],
        certificate_serial=serial_hex(certificate) if certificate is not None else None,
        revoked=path is not None and path.revoked is not None,
        signer_subject=_subject_cn(certificate) if certificate is not None else None,
        signing_time=signing_time,
        digest_algorithm=digest_oid,
        signature_algorithm=signature_oid,
        errors=errors,
        timestamp=timestamp,
        seal=seal,
        seal_note=seal_note,
    )
