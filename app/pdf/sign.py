"""Sign a PDF inside the file: an incremental update adds a signature field whose /Contents holds a
detached CMS SignedData (SM3 digest, SM2-with-SM3 signature, the seal certificate).

The update is written here rather than by pypdf's incremental writer, which drops /Info and /ID from the new
trailer, glues the first object onto a final "%%EOF" that has no end-of-line, and breaks when a second
signature is added. pypdf only parses the original and serialises the few dictionaries that change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO

from asn1crypto import cms, keys, pem, x509
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
    TextStringObject,
)

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_sign, sm3
from app.crypto.openssl_provider import sm2_public_key_pem
from app.pdf.timestamps import add_signature_timestamp
from app.pdf.verify import DOCMDP_FORM_FILLING, require_verified_signatures
from app.platform.errors import CryptoError
from app.seals.structures import seal_attribute
from app.tsa.client import Timestamper

SIGNATURE_SIZE = 8192  # bytes reserved for the CMS; a one-certificate SM2 CMS is about 1 KiB
# an organisation's signature carries its GB/T 38540 seal (about 10 KiB with its PNG and certificates): room for it
# and its attribute's header on top of SIGNATURE_SIZE (`sealed_size`), or this much for a seal of unknown size
SEALED_SIGNATURE_SIZE = 32768
_SEAL_ATTRIBUTE_OVERHEAD = 64


def sealed_size(seal: bytes | None) -> int:
    """The bytes to reserve for a CMS carrying `seal` (SIGNATURE_SIZE without one)."""
    return SIGNATURE_SIZE if seal is None else SIGNATURE_SIZE + len(seal) + _SEAL_ATTRIBUTE_OVERHEAD


_BYTE_RANGE_PLACEHOLDER = b"[0 9999999999 9999999999 9999999999]"
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF")
_OBJECT_HEADER = re.compile(rb"\s*\d+\s+\d+\s+obj\b")
_WIDGET_FLAGS = 4 | 128  # Print | Locked
_SIG_FLAGS = 3  # SignaturesExist | AppendOnly
_DOCMDP_REFERENCE = (
    b"[<< /Type /SigRef /TransformMethod /DocMDP"
    b" /TransformParams << /Type /TransformParams /P %d /V /1.2 >> >>]" % DOCMDP_FORM_FILLING
)


def _serialise(value: PdfObject) -> bytes:
    stream = BytesIO()
    value.write_to_stream(stream)
    return stream.getvalue()


def _pdf_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("D:%Y%m%d%H%M%SZ")


def _as_utc(moment: datetime) -> datetime:
    """Aware datetimes are converted; naive ones are taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class _Update:
    """New and changed objects of one incremental update, and the trailer that chains it to the original."""

    original: bytes
    reader: PdfReader
    next_number: int
    bodies: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def allocate(self) -> IndirectObject:
        reference = IndirectObject(self.next_number, 0, self.reader)
        self.next_number += 1
        return reference

    def put(self, reference: IndirectObject, value: PdfObject | bytes) -> None:
        body = value if isinstance(value, bytes) else _serialise(value)
        self.bodies[(reference.idnum, reference.generation)] = body

    def render(self) -> tuple[bytes, dict[tuple[int, int], int]]:
        """The whole file and the offset of each written object."""
        out = bytearray(self.original)
        if not out.endswith((b"\n", b"\r")):
            out += b"\n"
        offsets: dict[tuple[int, int], int] = {}
        for (number, generation), body in sorted(self.bodies.items()):
            offsets[(number, generation)] = len(out)
            out += b"%d %d obj\n%s\nendobj\n" % (number, generation, body)
        previous = _previous_xref(self.original)
        if self.original[previous : previous + 4] == b"xref":
            out += self._xref_table(offsets, previous, len(out))
        else:
            out += self._xref_stream(offsets, previous, len(out))
        return bytes(out), offsets

    def _trailer_entries(self, size: int, previous: int) -> DictionaryObject:
        old = self.reader.trailer
        trailer = DictionaryObject(
            {
                NameObject("/Size"): NumberObject(size),
                NameObject("/Root"): old.raw_get("/Root"),
                NameObject("/Prev"): NumberObject(previous),
            }
        )
        for key in ("/Info", "/ID"):
            if key in old:
                trailer[NameObject(key)] = old.raw_get(key)
        return trailer

    def _xref_table(self, offsets: dict[tuple[int, int], int], previous: int, at: int) -> bytes:
        lines = [b"xref\n"]
        for run in _runs(sorted(offsets)):
            lines.append(b"%d %d\n" % (run[0][0], len(run)))
            lines.extend(b"%010d %05d n\r\n" % (offsets[key], key[1]) for key in run)
        trailer = _serialise(self._trailer_entries(self.next_number, previous))
        return b"".join(lines) + b"trailer\n" + trailer + b"\nstartxref\n%d\n%%%%EOF\n" % at

    def _xref_stream(self, offsets: dict[tuple[int, int], int], previous: int, at: int) -> bytes:
        number = self.next_number
        entries = {**offsets, (number, 0): at}
        runs = _runs(sorted(entries))
        data = b"".join(
            bytes([1]) + entries[key].to_bytes(4, "big") + key[1].to_bytes(2, "big") for run in runs for key in run
        )
        dictionary = self._trailer_entries(number + 1, previous)
        dictionary[NameObject("/Type")] = NameObject("/XRef")
        dictionary[NameObject("/W")] = ArrayObject([NumberObject(width) for width in (1, 4, 2)])
        dictionary[NameObject("/Index")] = ArrayObject(
            [NumberObject(value) for run in runs for value in (run[0][0], len(run))]
        )
        dictionary[NameObject("/Length")] = NumberObject(len(data))
        return b"%d 0 obj\n%s\nstream\n%s\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % (
            number,
            _serialise(dictionary),
            data,
            at,
        )


def _runs(keys_in_order: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Consecutive object numbers grouped, as xref subsections require."""
    runs: list[list[tuple[int, int]]] = []
    for key in keys_in_order:
        if runs and runs[-1][-1][0] + 1 == key[0]:
            runs[-1].append(key)
        else:
            runs.append([key])
    return runs


def _previous_xref(original: bytes) -> int:
    matches = list(_STARTXREF.finditer(original[-2048:]))
    if not matches:
        raise CryptoError("PDF 缺少 startxref，无法追加签名", code="PDF_INVALID")
    offset = int(matches[-1].group(1))
    if original[offset : offset + 4] != b"xref" and not _OBJECT_HEADER.match(original, offset):
        raise CryptoError("PDF 交叉引用位置不正确，无法追加签名", code="PDF_INVALID")
    return offset


def _open(pdf_bytes: bytes) -> PdfReader:
    try:
        reader = PdfReader(BytesIO(pdf_bytes), strict=False)
        encrypted = reader.is_encrypted
        page_count = 0 if encrypted else len(reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError) as error:
        raise CryptoError("无法解析待签名的 PDF", code="PDF_INVALID", details=str(error)) from error
    if encrypted:
        raise CryptoError("不支持对加密的 PDF 签名", code="PDF_ENCRYPTED")
    if page_count == 0:
        raise CryptoError("PDF 没有页面，无法签名", code="PDF_INVALID")
    return reader


def _first_free_number(reader: PdfReader) -> int:
    """/Size, unless the cross-reference sections name higher object numbers than it admits."""
    used = [number for table in reader.xref.values() for number in table] + list(reader.xref_objStm)
    return max([int(reader.trailer["/Size"]), *(number + 1 for number in used)])


def _append_reference(container: DictionaryObject, key: str, item: IndirectObject, update: _Update) -> None:
    """Append to the array under `key`: in place when it is an indirect object, otherwise in `container`."""
    raw = container.raw_get(key) if key in container else None
    if isinstance(raw, IndirectObject):
        array = raw.get_object()
        array.append(item)
        update.put(raw, array)
    else:
        container[NameObject(key)] = ArrayObject([*(raw or []), item])


def _field_name(form: DictionaryObject) -> str:
    taken = {str(entry.get_object().get("/T")) for entry in form.get("/Fields", [])}
    number = 1
    while f"Signature{number}" in taken:
        number += 1
    return f"Signature{number}"


def _contents_placeholder(size: int) -> bytes:
    return b"<" + b"0" * (2 * size) + b">"


def _signature_dictionary(
    signer_name: str, reason: str, location: str, when: datetime, certify: bool, size: int = SIGNATURE_SIZE
) -> bytes:
    """The /Sig dictionary with fixed-width placeholders first, so that they are found at a known place (`size`
    bytes for the CMS); a certification signature carries a DocMDP reference allowing later signatures and form
    filling only."""
    entries = [
        (b"/Type", b"/Sig"),
        (b"/ByteRange", _BYTE_RANGE_PLACEHOLDER),
        (b"/Contents", _contents_placeholder(size)),
        (b"/Filter", b"/Adobe.PPKLite"),
        (b"/SubFilter", b"/adbe.pkcs7.detached"),
        (b"/Name", _serialise(TextStringObject(signer_name))),
        (b"/Reason", _serialise(TextStringObject(reason))),
        (b"/Location", _serialise(TextStringObject(location))),
        (b"/M", _serialise(TextStringObject(_pdf_date(when)))),
    ]
    if certify:
        entries.append((b"/Reference", _DOCMDP_REFERENCE))
    return b"<<\n" + b"".join(key + b" " + value + b"\n" for key, value in entries) + b">>"


def _document_timestamp_dictionary() -> bytes:
    """The /DocTimeStamp dictionary (ISO 32000-2 12.8.5, PAdES): its /Contents is an RFC 3161 token."""
    entries = [
        (b"/Type", b"/DocTimeStamp"),
        (b"/ByteRange", _BYTE_RANGE_PLACEHOLDER),
        (b"/Contents", _contents_placeholder(SIGNATURE_SIZE)),
        (b"/Filter", b"/Adobe.PPKLite"),
        (b"/SubFilter", b"/ETSI.RFC3161"),
    ]
    return b"<<\n" + b"".join(key + b" " + value + b"\n" for key, value in entries) + b">>"


UpdateExtension = Callable[["_Update"], None]  # adds objects of its own to an update (app.pdf.dss: /DSS)


def _prepare(
    pdf_bytes: bytes, dictionary: bytes, certify: bool, extension: UpdateExtension | None = None
) -> tuple[bytes, int]:
    """The file with a signature field appended whose value is `dictionary`, and the offset of that object; when
    `certify`, the catalog's /Perms /DocMDP names it (a certification signature must be the file's first);
    `extension` adds its own objects to the same update."""
    reader = _open(pdf_bytes)
    update = _Update(pdf_bytes, reader, _first_free_number(reader))
    root_reference = reader.trailer.raw_get("/Root")
    root = root_reference.get_object()
    page = reader.pages[-1]
    signature_reference, widget_reference = update.allocate(), update.allocate()

    form_raw = root.raw_get("/AcroForm") if "/AcroForm" in root else None
    if certify:
        fields = form_raw.get_object().get("/Fields") if form_raw is not None else None
        if any("/V" in item.get_object() for item in fields or []):  # empty reserved fields may precede it
            raise CryptoError("认证签名必须是文件的第一个签名", code="PDF_ALREADY_SIGNED")
        root[NameObject("/Perms")] = DictionaryObject({NameObject("/DocMDP"): signature_reference})
        update.put(root_reference, root)
    if isinstance(form_raw, IndirectObject):
        form, form_home = form_raw.get_object(), form_raw
    else:
        form = form_raw if form_raw is not None else DictionaryObject()
        root[NameObject("/AcroForm")] = form
        form_home = root_reference
    widget = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Widget"),
            NameObject("/FT"): NameObject("/Sig"),
            NameObject("/T"): TextStringObject(_field_name(form)),
            NameObject("/F"): NumberObject(_WIDGET_FLAGS),
            NameObject("/Rect"): ArrayObject([NumberObject(0)] * 4),
            NameObject("/V"): signature_reference,
            NameObject("/P"): page.indirect_reference,
        }
    )
    _append_reference(form, "/Fields", widget_reference, update)
    form[NameObject("/SigFlags")] = NumberObject(_SIG_FLAGS)
    update.put(form_home, form_home.get_object())
    _append_reference(page, "/Annots", widget_reference, update)
    update.put(page.indirect_reference, page)
    update.put(widget_reference, widget)
    update.put(signature_reference, dictionary)
    if extension is not None:
        extension(update)
    prepared, offsets = update.render()
    return prepared, offsets[(signature_reference.idnum, 0)]


def _certificate(certificate_pem: bytes, private_key_pem: bytes) -> x509.Certificate:
    try:
        certificate = x509.Certificate.load(pem.unarmor(certificate_pem)[2])
        certified_point = certificate.public_key["public_key"].native
    except (ValueError, TypeError, KeyError) as error:
        raise CryptoError("无法解析签章证书", code="INVALID_CERTIFICATE") from error
    key_info = keys.PublicKeyInfo.load(pem.unarmor(sm2_public_key_pem(private_key_pem))[2])
    if key_info["public_key"].native != certified_point:
        raise CryptoError("签章证书与签名私钥不匹配", code="CERT_KEY_MISMATCH")
    return certificate


def build_cms(
    digest: bytes,
    private_key_pem: bytes,
    certificate: x509.Certificate,
    signing_time: datetime,
    chain: Sequence[bytes] = (),
    seal: bytes | None = None,
) -> bytes:
    """A detached CMS SignedData over `digest` (SM3 of the signed bytes), signed with SM2-with-SM3; it carries
    the signer's certificate and `chain` (PEM: its issuers up to the root), so that a verifier sees the path, and
    `seal` (an organisation's GB/T 38540 SES_Seal, DER) as a signed attribute (app.seals.structures)."""
    moment = _as_utc(signing_time)
    time_choice = "utc_time" if 1950 <= moment.year < 2050 else "generalized_time"
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({time_choice: moment})]}),
        cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
        *([seal_attribute(seal)] if seal is not None else []),
    ]
    signed_attrs = cms.CMSAttributes(sorted(attributes, key=lambda attribute: attribute.dump()))  # DER SET OF order
    signature = sm2_sign(private_key_pem, signed_attrs.dump())  # over the DER SET OF, as RFC 5652 §5.4 says
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
            "certificates": [certificate, *(_chain_certificates(chain))],
            "signer_infos": [signer],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def _chain_certificates(chain: Sequence[bytes]) -> list[x509.Certificate]:
    try:
        return [x509.Certificate.load(pem.unarmor(item)[2]) for item in chain]
    except (ValueError, TypeError) as error:
        raise CryptoError("无法解析证书链", code="INVALID_CERTIFICATE") from error


@dataclass(frozen=True)
class PreparedSignature:
    """A PDF with an empty signature field appended: `digest` (SM3 of the signed byte ranges) is what the
    signer signs - the platform itself, or a bank asked over the protocol - and `embed` puts its CMS in."""

    document: bytes
    start: int
    end: int

    @property
    def digest(self) -> bytes:
        return sm3(self.document[: self.start] + self.document[self.end :])

    def embed(self, signature: bytes) -> bytes:
        size = (self.end - self.start - 2) // 2
        if len(signature) > size:
            raise CryptoError("签名数据超出预留空间", code="PDF_SIGN_FAILED", details={"size": len(signature)})
        contents = b"<" + signature.hex().encode().ljust(2 * size, b"0") + b">"
        return self.document[: self.start] + contents + self.document[self.end :]


def prepare_signature(
    pdf_bytes: bytes,
    *,
    signer_name: str,
    reason: str,
    location: str,
    signing_time: datetime,
    certify: bool = False,
    size: int = SIGNATURE_SIZE,
) -> PreparedSignature:
    """The incremental update that will hold a signature, its byte range fixed; the same arguments give the
    same bytes. A naive `signing_time` is taken to be UTC. `certify`: a certification signature (DocMDP P=2).
    `size`: the bytes reserved for the CMS (`sealed_size` for one carrying a seal).

    This only lays the field out: callers that add a signature to a signed file check the signatures it has
    first (`sign_pdf` does; the bank's countersignature job does)."""
    moment = _as_utc(signing_time)
    dictionary = _signature_dictionary(signer_name, reason, location, moment, certify, size)
    return _fix_byte_range(*_prepare(pdf_bytes, dictionary, certify))


def prepare_document_timestamp(pdf_bytes: bytes, extension: UpdateExtension | None = None) -> PreparedSignature:
    """The incremental update that will hold a document timestamp: its `digest` is what the TSA stamps and
    `embed` takes the token; `extension` adds objects to the same update (validation data, app.pdf.dss)."""
    return _fix_byte_range(*_prepare(pdf_bytes, _document_timestamp_dictionary(), False, extension))


def _fix_byte_range(prepared: bytes, signature_at: int) -> PreparedSignature:
    range_at = prepared.index(_BYTE_RANGE_PLACEHOLDER, signature_at)
    start = prepared.index(b"/Contents <", signature_at) + len(b"/Contents ")
    end = prepared.index(b">", start) + 1
    byte_range = f"[0 {start} {end} {len(prepared) - end}]".encode().ljust(len(_BYTE_RANGE_PLACEHOLDER))
    patched = prepared[:range_at] + byte_range + prepared[range_at + len(byte_range) :]
    return PreparedSignature(patched, start, end)


def sign_pdf(
    pdf_bytes: bytes,
    private_key_pem: bytes,
    certificate_pem: bytes,
    *,
    signer_name: str,
    reason: str,
    location: str,
    signing_time: datetime,
    certify: bool = False,
    timestamper: Timestamper | None = None,
    chain: Sequence[bytes] = (),
    seal: bytes | None = None,
) -> bytes:
    """The PDF with the signature of the key's holder inside it; the original bytes stay untouched in front.

    A naive `signing_time` is taken to be UTC. `certify`: the first signature certifies the file (DocMDP P=2:
    later signatures and form filling only). `chain`: the certificate's issuers (PEM), carried in
    the CMS. A file whose signatures do not verify, or that was changed after
    them, is refused (CryptoError PDF_SIGNATURE_BROKEN). `timestamper` (the TSA's client): the signature gets a
    signatureTimeStampToken over its value (app.pdf.timestamps); without one, the signing time is our clock's.
    `seal`: the signer's GB/T 38540 seal (DER), carried as a signed attribute (an organisation signs with one).
    """
    certificate = _certificate(certificate_pem, private_key_pem)
    require_verified_signatures(pdf_bytes)
    prepared = prepare_signature(
        pdf_bytes,
        signer_name=signer_name,
        reason=reason,
        location=location,
        signing_time=signing_time,
        certify=certify,
        size=sealed_size(seal),
    )
    signature = build_cms(prepared.digest, private_key_pem, certificate, signing_time, chain, seal)
    return prepared.embed(signature if timestamper is None else add_signature_timestamp(signature, timestamper))


def timestamp_document(pdf_bytes: bytes, timestamper: Timestamper, extension: UpdateExtension | None = None) -> bytes:
    """The PDF with a document timestamp (/DocTimeStamp, SubFilter ETSI.RFC3161) as its last incremental update:
    the TSA's token over the SM3 of everything before it (and of what `extension` adds to the same update: the
    validation data of app.pdf.dss). A file whose signatures do not verify is refused."""
    require_verified_signatures(pdf_bytes)
    prepared = prepare_document_timestamp(pdf_bytes, extension)
    return prepared.embed(timestamper(prepared.digest))


def sign_digest(
    digest: bytes,
    private_key_pem: bytes,
    certificate_pem: bytes,
    signing_time: datetime,
    chain: Sequence[bytes] = (),
    seal: bytes | None = None,
) -> bytes:
    """A detached CMS over an SM3 `digest` with the key and its certificate (and its issuers, `chain`, and its
    GB/T 38540 `seal`): what a bank answers when the platform asks it to sign a document (bank protocol
    `POST /v1/signatures`)."""
    certificate = _certificate(certificate_pem, private_key_pem)
    return build_cms(digest, private_key_pem, certificate, signing_time, chain, seal)
