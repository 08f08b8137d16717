"""Validation data inside the PDF (ISO 32000-2 12.8.4.3, PAdES B-LT): the catalog's /DSS with /Certs and /CRLs,
DER streams a verifier needs years later without asking anyone (certificate chains, revocation lists). Written in
the same incremental update as the document timestamp, which therefore covers it (B-LTA): `timestamp_document(pdf,
timestamper, validation_data_extension(certificates, crls))`. `pdf/revisions.py` lets a later update add /DSS."""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, StreamObject

from app.pdf.sign import UpdateExtension, _Update
from app.pki.chain import TrustStore


def _stream(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data)


def _existing(reader: PdfReader) -> dict[str, list[IndirectObject]]:
    dss = reader.trailer["/Root"].get("/DSS")
    dss = dss.get_object() if dss is not None else None
    if not isinstance(dss, DictionaryObject):
        return {"/Certs": [], "/CRLs": []}
    return {key: list(dss.get(key) or []) for key in ("/Certs", "/CRLs")}


def _contents(references: list[IndirectObject]) -> list[bytes]:
    return [item.get_object().get_data() for item in references if isinstance(item.get_object(), StreamObject)]


def validation_data_extension(certificates: Sequence[bytes], crls: Sequence[bytes] = ()) -> UpdateExtension:
    """What puts DER `certificates` and `crls` into the file's /DSS (kept with what it had; a DER already there is
    not added twice) within an update of `app.pdf.sign`."""

    def extend(update: _Update) -> None:
        entries = _existing(update.reader)
        for key, items in (("/Certs", certificates), ("/CRLs", crls)):
            have = _contents(entries[key])
            for der in dict.fromkeys(items):
                if der not in have:
                    reference = update.allocate()
                    update.put(reference, _stream(der))
                    entries[key].append(reference)
        dss_reference = update.allocate()
        dss = {NameObject(key): ArrayObject(items) for key, items in entries.items() if items}
        update.put(dss_reference, DictionaryObject(dss))
        root_reference = update.reader.trailer.raw_get("/Root")
        root = root_reference.get_object()
        root[NameObject("/DSS")] = dss_reference
        update.put(root_reference, root)

    return extend


def embedded_trust(pdf_bytes: bytes, anchors: Sequence[bytes], crls: Sequence[bytes] = ()) -> TrustStore:
    """What an offline verifier checks a file against, years later and without our systems: only the `anchors` it
    trusts (PEM or DER: the platform root), the CRLs the file carries in /DSS (as of its document timestamp) and
    any newer `crls` the verifier has (the CA's latest: a certificate revoked since is then refused). The
    certificates in /DSS are no anchors: they can only complete paths to the given ones."""
    _, embedded = validation_data(pdf_bytes)
    return TrustStore.of(anchors, [*embedded, *crls])


def validation_data(pdf_bytes: bytes) -> tuple[list[bytes], list[bytes]]:
    """(certificates, CRLs) in the file's /DSS, as DER; empty lists when it has none or it cannot be read."""
    try:
        entries = _existing(PdfReader(BytesIO(pdf_bytes), strict=False))
        return _contents(entries["/Certs"]), _contents(entries["/CRLs"])
    except Exception:  # a malformed file has no usable validation data
        return [], []
