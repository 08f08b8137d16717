"""Tampering with a signed PDF: any changed byte in the signed range, and incremental updates that change content
(even when a second signature follows them), are reported; an update that only adds a signature is not."""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO

import pytest
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject

from app.pdf.sign import _first_free_number, _Update, prepare_signature, sign_digest, sign_pdf
from app.pdf.verify import verify_pdf_signatures
from app.platform.errors import CryptoError
from app.tools.banksim.keys import provision_simulated_banks
from tests.factories import SEALS_VALID_FROM
from tests.pdf_samples import text_pdf

WHEN = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _document() -> bytes:
    return text_pdf(b"Pay 1000 yuan")


@pytest.fixture(scope="module")
def seals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, bytes]]:
    folder, banks = tmp_path_factory.mktemp("seals"), tmp_path_factory.mktemp("bank-seals")
    provision_simulated_banks(folder, banks, ["ceb"], certificate_valid_from=SEALS_VALID_FROM)
    return {
        "platform": ((folder / "platform.key.pem").read_bytes(), (folder / "platform.cert.pem").read_bytes()),
        "ceb": ((banks / "ceb.key.pem").read_bytes(), (banks / "ceb.cert.pem").read_bytes()),
    }


def _sign(pdf: bytes, seal: tuple[bytes, bytes]) -> bytes:
    return sign_pdf(pdf, *seal, signer_name="x", reason="x", location="x", signing_time=WHEN)


@pytest.fixture(scope="module")
def signed(seals: dict[str, tuple[bytes, bytes]]) -> bytes:
    return _sign(_document(), seals["platform"])


def _update(pdf: bytes, change: str) -> bytes:
    """An incremental update that rewrites the page's content stream, or adds a text annotation to the page."""
    reader = PdfReader(BytesIO(pdf), strict=False)
    update = _Update(pdf, reader, _first_free_number(reader))
    page = reader.pages[0]
    if change == "content":
        stream = DecodedStreamObject()
        stream.set_data(b"BT /F1 24 Tf 72 700 Td (Pay 9000 yuan) Tj ET")
        update.put(page.raw_get("/Contents"), stream)
    else:
        note = update.allocate()
        update.put(
            note,
            DictionaryObject(
                {
                    NameObject("/Type"): NameObject("/Annot"),
                    NameObject("/Subtype"): NameObject("/FreeText"),
                    NameObject("/Rect"): ArrayObject([NumberObject(v) for v in (60, 690, 300, 730)]),
                }
            ),
        )
        annotations = list(page.get("/Annots", [])) if "/Annots" in page else []
        page[NameObject("/Annots")] = ArrayObject([*annotations, note])
        update.put(page.indirect_reference, page)
    return update.render()[0]


def test_every_changed_byte_in_the_signed_range_is_reported(signed: bytes) -> None:
    reports = verify_pdf_signatures(signed)
    assert len(reports) == 1 and reports[0].valid
    byte_range = [int(v) for v in signed[signed.index(b"/ByteRange [") + 12 :].split(b"]")[0].split()]
    _, first_length, second_start, second_length = byte_range
    end = second_start + second_length
    positions = [0, 9, first_length // 2, first_length - 1, second_start, (second_start + end) // 2, end - 1]
    for at in positions:
        flipped = signed[:at] + bytes([signed[at] ^ 0x01]) + signed[at + 1 :]
        report = verify_pdf_signatures(flipped)[-1]
        assert not report.valid, at


@pytest.mark.parametrize("change", ["content", "annotation"])
def test_an_update_that_changes_content_is_reported(signed: bytes, change: str) -> None:
    report = verify_pdf_signatures(_update(signed, change))[0]
    assert report.intact and report.signature_valid and report.revision_intact, "the signed revision is untouched"
    assert not report.covers_whole_file and not report.valid
    assert report.changes_after_signing and "签名后追加的更新修改了文件内容" in report.errors


def test_a_content_change_before_a_second_signature_is_still_reported(
    signed: bytes, seals: dict[str, tuple[bytes, bytes]]
) -> None:
    changed = _update(signed, "content")
    with pytest.raises(CryptoError) as refused:
        _sign(changed, seals["ceb"])
    assert refused.value.code == "PDF_SIGNATURE_BROKEN", "sign_pdf refuses to countersign a changed file"
    prepared = prepare_signature(changed, signer_name="x", reason="x", location="x", signing_time=WHEN)
    forged = prepared.embed(sign_digest(prepared.digest, *seals["ceb"], WHEN))  # signed by a tool that does not check
    first, second = verify_pdf_signatures(forged)
    assert second.valid and second.covers_whole_file
    assert not first.valid and any("页" in c or "对象" in c for c in first.changes_after_signing)


def test_a_second_signature_alone_is_not_a_change(signed: bytes, seals: dict[str, tuple[bytes, bytes]]) -> None:
    first, second = verify_pdf_signatures(_sign(signed, seals["ceb"]))
    assert first.valid and second.valid and first.changes_after_signing == []
    assert (first.covers_whole_file, first.revision_intact, second.covers_whole_file) == (False, True, True)
    assert second.signer_subject == "存管银行电子签章（ceb）"
