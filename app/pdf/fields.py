"""Signature fields reserved for the parties, and a signature placed into one of them.

`reserve_signature_fields` adds empty signature fields (no value, no appearance) at given rectangles before
anyone signs, so that the certification signature covers where the parties will sign. `sign_field` fills one
later, as an incremental update: the field's widget gains its value (the /Sig dictionary) and its appearance (the
signature image); nothing else changes, which `app.pdf.revisions` accepts after earlier signatures (a reserved
field may gain /V and /AP, its rectangle being fixed by the revision the earlier signers signed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from app.pdf.sign import (
    PreparedSignature,
    _append_reference,
    _as_utc,
    _certificate,
    _first_free_number,
    _fix_byte_range,
    _open,
    _signature_dictionary,
    _Update,
    add_signature_timestamp,
    build_cms,
)
from app.pdf.verify import require_verified_signatures
from app.platform.errors import CryptoError
from app.tsa.client import Timestamper

_PRINT = 4
PARTY_FIELDS = {"payer": "PartyPayer", "payee": "PartyPayee"}  # the signing order: payer first (甲方), then payee
SIGNATURE_WIDTH, SIGNATURE_HEIGHT = 120.0, 44.0  # points: the party's signature image


@dataclass(frozen=True)
class FieldPlace:
    name: str  # the field's /T, e.g. "PartyPayer"
    page: int  # 0-based
    rect: tuple[float, float, float, float]


def signature_lines(pdf_bytes: bytes, label: str = "签字：") -> list[tuple[int, float, float]]:
    """(page, x, y) right after each text run that is exactly `label` (the signature block's 签字： lines, not a
    clause that mentions signing), in reading order (page, top to bottom, left to right): where a signature image
    goes (x after the label, y its baseline, PDF user space)."""
    reader = _open(pdf_bytes)
    found: list[tuple[int, float, float]] = []
    for number, page in enumerate(reader.pages):
        hits: list[tuple[float, float]] = []

        def visit(text: str, cm: list[float], tm: list[float], _font: object, size: float, hits: list = hits) -> None:
            if text.strip() != label:
                return
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            width = abs(size * tm[0] * cm[0]) * len(label)  # CJK glyphs and the full-width colon are one em wide
            hits.append((x + width, y))

        page.extract_text(visitor_text=visit)
        found.extend((number, x, y) for x, y in sorted(hits, key=lambda hit: (-round(hit[1]), hit[0])))
    return found


def places_for(pdf_bytes: bytes, names: Sequence[str], label: str = "签字：") -> list[FieldPlace]:
    """A field for each of `names` at the last occurrences of `label` (the signature block ends the agreement), in
    order: the first name at the first of them."""
    lines = signature_lines(pdf_bytes, label)
    if len(lines) < len(names):
        raise CryptoError("协议中找不到当事人的签字位置", code="PDF_NO_SIGNATURE_LINE", details={"found": len(lines)})
    return [
        FieldPlace(name, page, (x, y - 14, x + SIGNATURE_WIDTH, y - 14 + SIGNATURE_HEIGHT))
        for name, (page, x, y) in zip(names, lines[len(lines) - len(names) :], strict=True)
    ]


def reserve_signature_fields(pdf_bytes: bytes, places: Sequence[FieldPlace]) -> bytes:
    """The unsigned PDF with an empty signature field at each place (an incremental update)."""
    reader = _open(pdf_bytes)
    root_reference = reader.trailer.raw_get("/Root")
    root = root_reference.get_object()
    if "/AcroForm" in root and root["/AcroForm"].get_object().get("/Fields"):
        raise CryptoError("文件已有表单字段，不能再预留签名位置", code="PDF_ALREADY_SIGNED")
    update = _Update(pdf_bytes, reader, _first_free_number(reader))
    form = DictionaryObject({NameObject("/Fields"): ArrayObject()})
    root[NameObject("/AcroForm")] = form
    for place in places:
        page = reader.pages[place.page]
        widget_reference = update.allocate()
        widget = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Annot"),
                NameObject("/Subtype"): NameObject("/Widget"),
                NameObject("/FT"): NameObject("/Sig"),
                NameObject("/T"): TextStringObject(place.name),
                NameObject("/F"): NumberObject(_PRINT),
                NameObject("/Rect"): ArrayObject([FloatObject(round(value, 2)) for value in place.rect]),
                NameObject("/P"): page.indirect_reference,
            }
        )
        update.put(widget_reference, widget)
        form["/Fields"].append(widget_reference)
        _append_reference(page, "/Annots", widget_reference, update)
        update.put(page.indirect_reference, page)
    update.put(root_reference, root)
    return update.render()[0]


def _reserved_field(reader: object, name: str) -> tuple[object, DictionaryObject]:
    root = reader.trailer["/Root"]  # type: ignore[attr-defined]
    form = root.get("/AcroForm")
    for reference in (form.get_object().get("/Fields") or []) if form is not None else []:
        widget = reference.get_object()
        if isinstance(widget, DictionaryObject) and widget.get("/T") == name and widget.get("/FT") == "/Sig":
            if "/V" in widget:
                raise CryptoError("该签名位置已经签署", code="PDF_FIELD_SIGNED", details={"field": name})
            return reference, widget
    raise CryptoError("协议中没有为该当事人预留的签名位置", code="PDF_NO_SIGNATURE_FIELD", details={"field": name})


def prepare_field_signature(
    pdf_bytes: bytes, field: str, appearance: bytes, *, signer_name: str, reason: str, location: str, when: datetime
) -> PreparedSignature:
    """The update that fills the reserved `field`: its /V (a /Sig dictionary with placeholders) and its /AP
    (`appearance`, a form XObject content sized to the field's rectangle)."""
    reader = _open(pdf_bytes)
    reference, widget = _reserved_field(reader, field)
    update = _Update(pdf_bytes, reader, _first_free_number(reader))
    signature_reference, appearance_reference = update.allocate(), update.allocate()
    x1, y1, x2, y2 = (float(value) for value in widget["/Rect"])
    stream = DecodedStreamObject()
    stream.set_data(appearance)
    stream.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Form"),
            NameObject("/BBox"): ArrayObject([FloatObject(value) for value in (0, 0, x2 - x1, y2 - y1)]),
        }
    )
    widget[NameObject("/V")] = signature_reference
    widget[NameObject("/AP")] = DictionaryObject({NameObject("/N"): appearance_reference})
    update.put(reference, widget)
    update.put(appearance_reference, stream)
    update.put(signature_reference, _signature_dictionary(signer_name, reason, location, _as_utc(when), False))
    prepared, offsets = update.render()
    return _fix_byte_range(prepared, offsets[(signature_reference.idnum, 0)])


def sign_field(
    pdf_bytes: bytes,
    field: str,
    appearance: bytes,
    private_key_pem: bytes,
    certificate_pem: bytes,
    *,
    signer_name: str,
    reason: str,
    location: str,
    signing_time: datetime,
    timestamper: Timestamper | None = None,
    chain: Sequence[bytes] = (),
) -> bytes:
    """`pdf_bytes` signed into its reserved `field` with the signature image `appearance`; like `sign_pdf`, a file
    whose signatures do not verify is refused, and `timestamper` adds the TSA's token to the signature."""
    certificate = _certificate(certificate_pem, private_key_pem)
    require_verified_signatures(pdf_bytes)
    prepared = prepare_field_signature(
        pdf_bytes, field, appearance, signer_name=signer_name, reason=reason, location=location, when=signing_time
    )
    signature = build_cms(prepared.digest, private_key_pem, certificate, signing_time, chain)
    return prepared.embed(signature if timestamper is None else add_signature_timestamp(signature, timestamper))
