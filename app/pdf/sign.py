"""Sign a PDF inside the file: an incremental update adds a signature field whose /Contents holds a
detached CMS SignedData (SM3 digest, SM2-with-SM3 signature, the seal certificate)."""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from asn1crypto import cms, pem, x509
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    PdfObject,
    TextStringObject,
)

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_sign, sm3
from app.errors import CryptoError

SIGNATURE_SIZE = 8192  # bytes reserved for the CMS; a one-certificate SM2 CMS is about 1 KiB
_CONTENTS_PLACEHOLDER = b"<" + b"0" * (2 * SIGNATURE_SIZE) + b">"
_BYTE_RANGE_PLACEHOLDER = b"[0 9999999999 9999999999 9999999999]"


class _RawPlaceholder(PdfObject):
    """Bytes written as they are, to be patched once the file's final layout is known."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def clone(self, pdf_dest: Any, force_duplicate: bool = False, ignore_fields: Any = ()) -> _RawPlaceholder:
        return self

    def hash_bin(self) -> int:
        return hash(self.raw)

    def write_to_stream(self, stream: Any, encryption_key: Any = None) -> None:
        stream.write(self.raw)


def _pdf_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("D:%Y%m%d%H%M%SZ")


def _append_signature_field(pdf_bytes: bytes, signer_name: str, reason: str, location: str, when: datetime) -> bytes:
    writer = PdfWriter(PdfReader(BytesIO(pdf_bytes)), incremental=True)
    signature = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Sig"),
            NameObject("/Filter"): NameObject("/Adobe.PPKLite"),
            NameObject("/SubFilter"): NameObject("/adbe.pkcs7.detached"),
            NameObject("/Name"): TextStringObject(signer_name),
            NameObject("/Reason"): TextStringObject(reason),
            NameObject("/Location"): TextStringObject(location),
            NameObject("/M"): TextStringObject(_pdf_date(when)),
            NameObject("/ByteRange"): _RawPlaceholder(_BYTE_RANGE_PLACEHOLDER),
            NameObject("/Contents"): _RawPlaceholder(_CONTENTS_PLACEHOLDER),
        }
    )
    page = writer.pages[-1]
    widget = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Widget"),
            NameObject("/FT"): NameObject("/Sig"),
            NameObject("/T"): TextStringObject(f"Signature{len(_existing_fields(writer)) + 1}"),
            NameObject("/F"): NumberObject(132),
            NameObject("/Rect"): ArrayObject([NumberObject(0)] * 4),
            NameObject("/V"): writer._add_object(signature),
            NameObject("/P"): page.indirect_reference,
        }
    )
    widget_ref = writer._add_object(widget)
    annotations = page.get("/Annots")
    page[NameObject("/Annots")] = ArrayObject([*(annotations.get_object() if annotations else []), widget_ref])
    fields = ArrayObject([*_existing_fields(writer), widget_ref])
    existing_form = writer._root_object.get("/AcroForm")
    form = existing_form.get_object() if existing_form is not None else DictionaryObject()
    form[NameObject("/Fields")] = fields
    form[NameObject("/SigFlags")] = NumberObject(3)
    if existing_form is None:
        writer._root_object[NameObject("/AcroForm")] = form
    output = BytesIO()
    writer.write(output)
    return output.getvalue()


def _existing_fields(writer: PdfWriter) -> list[Any]:
    form = writer._root_object.get("/AcroForm")
    if form is None:
        return []
    fields = form.get_object().get("/Fields")
    return list(fields.get_object()) if fields is not None else []


def build_cms(digest: bytes, private_key_pem: bytes, certificate_pem: bytes, signing_time: datetime) -> bytes:
    """A detached CMS SignedData over `digest` (SM3 of the signed bytes), signed with SM2-with-SM3."""
    certificate = x509.Certificate.load(pem.unarmor(certificate_pem)[2])
    signed_attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute(
                {"type": "signing_time", "values": [cms.Time({"utc_time": signing_time.astimezone(UTC)})]}
            ),
            cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
        ]
    )
    signature = sm2_sign(private_key_pem, signed_attrs.dump())  # over the DER SET OF, as RFC 5652 says
    signer = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": certificate.issuer, "serial_number": certificate.serial_number}
                    )
                }
            ),
            "digest_algorithm": {"algorithm": sm_oids.SM3_NAME},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": sm_oids.SM2_WITH_SM3_NAME},
            "signature": signature,
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": sm_oids.SM3_NAME}],
            "encap_content_info": {"content_type": "data"},
            "certificates": [certificate],
            "signer_infos": [signer],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def sign_pdf(
    pdf_bytes: bytes,
    private_key_pem: bytes,
    certificate_pem: bytes,
    *,
    signer_name: str,
    reason: str,
    location: str,
    signing_time: datetime,
) -> bytes:
    """The PDF with the platform's signature inside it; the original bytes stay untouched in front."""
    prepared = _append_signature_field(pdf_bytes, signer_name, reason, location, signing_time)
    start = prepared.rfind(_CONTENTS_PLACEHOLDER)
    range_at = prepared.rfind(_BYTE_RANGE_PLACEHOLDER)
    if start < 0 or range_at < 0:
        raise CryptoError("PDF 签名占位符写入失败", code="PDF_SIGN_FAILED")
    end = start + len(_CONTENTS_PLACEHOLDER)
    byte_range = f"[0 {start} {end} {len(prepared) - end}]".encode().ljust(len(_BYTE_RANGE_PLACEHOLDER))
    patched = prepared[:range_at] + byte_range + prepared[range_at + len(byte_range) :]
    digest = sm3(patched[:start] + patched[end:])
    signature = build_cms(digest, private_key_pem, certificate_pem, signing_time)
    if len(signature) > SIGNATURE_SIZE:
        raise CryptoError("签名数据超出预留空间", code="PDF_SIGN_FAILED", details={"size": len(signature)})
    contents = b"<" + signature.hex().encode().ljust(2 * SIGNATURE_SIZE, b"0") + b">"
    return patched[:start] + contents + patched[end:]
