"""The signature inside the PDF, on small PDFs made here: classic and stream cross-references, signing twice,
what readers (pypdf, poppler, the openssl command line) see, and how each kind of change is reported."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import cms, pem, x509
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject

from app.crypto import sm3
from app.crypto.keys import ensure_keys, generate_sm2_private_key_pem
from app.pdf.sign import SIGNATURE_SIZE, sign_pdf
from app.pdf.verify import verify_pdf
from app.platform.errors import CryptoError
from tests.factories import SEALS_VALID_FROM
from tests.openssl_support import openssl_sm2_verifies
from tests.pdf_samples import text_pdf

SIGNING_TIME = datetime(2026, 11, 23, 16, 0, tzinfo=timezone(timedelta(hours=8)))
SM3_OID = "1.2.156.10197.1.401"
SM2_WITH_SM3_OID = "1.2.156.10197.1.501"


@dataclass(frozen=True)
class Seal:
    key: bytes
    certificate: bytes
    folder: Path

    def sign(self, pdf: bytes, signing_time: datetime = SIGNING_TIME) -> bytes:
        return sign_pdf(
            pdf,
            self.key,
            self.certificate,
            signer_name="存管平台",
            reason="资金存管协议 RE1100002026112300001",
            location="北京",
            signing_time=signing_time,
        )


def _pypdf_document(*, pages: int = 2, final_newline: bool = True) -> bytes:
    """Classic cross-reference table, /Info with a title."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    writer.add_metadata({"/Title": "Escrow agreement"})
    output = BytesIO()
    writer.write(output)
    return output.getvalue() if final_newline else output.getvalue().rstrip(b"\r\n")


def _pydyf_document() -> bytes:
    """Cross-reference stream, objects in object streams, an /ID, visible text."""
    return text_pdf(b"Signed by the seal", identifier=True, compress=True)


def _cms(signed: bytes) -> tuple[cms.SignedData, list[int]]:
    reader = PdfReader(BytesIO(signed))
    signature = reader.trailer["/Root"]["/AcroForm"]["/Fields"][-1].get_object()["/V"]
    byte_range = [int(value) for value in signature["/ByteRange"]]
    content = cms.ContentInfo.load(bytes.fromhex(signed[byte_range[1] + 1 : byte_range[2] - 1].decode()))
    return content["content"], byte_range


def _run(*command: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(command), capture_output=True, stdin=subprocess.DEVNULL, timeout=30)


@pytest.fixture(scope="module")
def seal(tmp_path_factory: pytest.TempPathFactory) -> Seal:
    """The platform's seal, its certificate valid from before SIGNING_TIME (the verifier checks the signing time)."""
    folder = tmp_path_factory.mktemp("seal")
    ensure_keys(folder, SEALS_VALID_FROM)
    return Seal((folder / "platform.key.pem").read_bytes(), (folder / "platform.cert.pem").read_bytes(), folder)


@pytest.fixture(scope="module")
def original() -> bytes:
    return _pypdf_document()


@pytest.fixture(scope="module")
def signed(seal: Seal, original: bytes) -> bytes:
    return seal.sign(original)


def test_signed_pdf_verifies_and_appends_to_the_untouched_original(seal: Seal, original: bytes, signed: bytes) -> None:
    assert signed.startswith(original)
    report = verify_pdf(signed, seal.certificate)
    assert report.valid and report.errors == []
    assert (report.signed, report.intact, report.covers_whole_file, report.signature_valid, report.trusted) == (
        True,
        True,
        True,
        True,
        True,
    )
    assert report.signer_subject == "存管平台电子签章"
    assert report.signing_time == SIGNING_TIME
    assert (report.digest_algorithm, report.signature_algorithm) == (SM3_OID, SM2_WITH_SM3_OID)


def test_pypdf_sees_the_signature_field_on_the_last_page(signed: bytes) -> None:
    reader = PdfReader(BytesIO(signed))
    assert reader.metadata is not None and reader.metadata.title == "Escrow agreement", "/Info kept in the update"
    form = reader.trailer["/Root"]["/AcroForm"]
    assert form["/SigFlags"] == 3
    widget = form["/Fields"][0].get_object()
    assert (widget["/FT"], widget["/T"], widget["/Subtype"]) == ("/Sig", "Signature1", "/Widget")
    assert [annotation.get_object() for annotation in reader.pages[-1]["/Annots"]] == [widget]
    assert "/Annots" not in reader.pages[0]
    value = widget["/V"]
    assert (value["/Type"], value["/Filter"], value["/SubFilter"]) == ("/Sig", "/Adobe.PPKLite", "/adbe.pkcs7.detached")
    assert (value["/Name"], value["/Reason"], value["/Location"]) == (
        "存管平台",
        "资金存管协议 RE1100002026112300001",
        "北京",
    )
    assert value["/M"] == "D:20261123080000Z"
    assert len(value["/Contents"].original_bytes) == SIGNATURE_SIZE


def test_poppler_reads_the_signed_file(signed: bytes, tmp_path: Path) -> None:
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    info = _run("pdfinfo", str(path))
    assert info.returncode == 0 and not info.stderr, info.stderr
    assert b"Escrow agreement" in info.stdout and b"Pages:           2" in info.stdout
    assert _run("pdftotext", str(path), "-").returncode == 0
    signatures = _run("pdfsig", str(path)).stdout.decode()
    assert "Signature Field Name: Signature1" in signatures and "存管平台电子签章" in signatures
    assert "Total document signed" in signatures


def test_cms_is_detached_signed_data_with_sm_algorithms(seal: Seal, signed: bytes) -> None:
    signed_data, byte_range = _cms(signed)
    assert signed_data["encap_content_info"]["content_type"].native == "data"
    assert signed_data["encap_content_info"]["content"].native is None, "detached"
    assert [algorithm["algorithm"].dotted for algorithm in signed_data["digest_algorithms"]] == [SM3_OID]
    certificate = x509.Certificate.load(pem.unarmor(seal.certificate)[2])
    assert [choice.chosen.dump() for choice in signed_data["certificates"]] == [certificate.dump()]
    signer = signed_data["signer_infos"][0]
    assert signer["digest_algorithm"]["algorithm"].dotted == SM3_OID
    assert signer["signature_algorithm"]["algorithm"].dotted == SM2_WITH_SM3_OID
    assert signer["sid"].chosen["serial_number"].native == certificate.serial_number
    attributes = {attribute["type"].native: attribute["values"][0].native for attribute in signer["signed_attrs"]}
    assert attributes["content_type"] == "data"
    assert attributes["signing_time"] == SIGNING_TIME
    _, first_length, second_start, second_length = byte_range
    assert second_start + second_length == len(signed)
    assert attributes["message_digest"] == sm3(signed[:first_length] + signed[second_start:])


def test_openssl_cli_verifies_the_signature_over_the_signed_attributes(
    seal: Seal, signed: bytes, tmp_path: Path
) -> None:
    signer = _cms(signed)[0]["signer_infos"][0]
    attributes = signer["signed_attrs"].dump()
    signed_set = b"\x31" + attributes[1:]  # signed as a SET OF, stored [0] IMPLICIT
    assert openssl_sm2_verifies(seal.certificate, signed_set, signer["signature"].native, tmp_path)
    other = signed_set[:-1] + bytes([signed_set[-1] ^ 1])
    assert not openssl_sm2_verifies(seal.certificate, other, signer["signature"].native, tmp_path)


def test_a_changed_byte_in_the_signed_range_breaks_integrity_only(seal: Seal, signed: bytes) -> None:
    at = signed.index(b"Escrow agreement")
    changed = signed[:at] + b"F" + signed[at + 1 :]
    report = verify_pdf(changed, seal.certificate)
    assert report.signed and not report.intact and not report.valid
    assert report.covers_whole_file and report.signature_valid
    assert any("篡改" in error for error in report.errors)


def test_a_changed_signature_value_breaks_the_signature_only(seal: Seal, signed: bytes) -> None:
    signature_hex = _cms(signed)[0]["signer_infos"][0]["signature"].native.hex().encode()
    at = signed.index(signature_hex) + len(signature_hex) // 2
    digit = b"1" if signed[at : at + 1] != b"1" else b"2"
    report = verify_pdf(signed[:at] + digit + signed[at + 1 :], seal.certificate)
    assert report.intact and report.covers_whole_file
    assert not report.signature_valid and not report.valid
    assert "SM2 签名验证失败" in report.errors


def test_bytes_after_the_signature_are_not_covered(seal: Seal, signed: bytes) -> None:
    report = verify_pdf(signed + b"\n% appended after signing\n", seal.certificate)
    assert report.intact and report.signature_valid
    assert not report.covers_whole_file and not report.valid


def test_another_certificate_is_not_trusted(signed: bytes, tmp_path: Path) -> None:
    ensure_keys(tmp_path)
    report = verify_pdf(signed, (tmp_path / "platform.cert.pem").read_bytes())
    assert report.signature_valid and report.intact and not report.trusted and not report.valid
    assert verify_pdf(signed).valid, "without a trusted certificate the embedded one is used"


def test_signing_an_xref_stream_pdf_keeps_its_id_and_text(seal: Seal, tmp_path: Path) -> None:
    original = _pydyf_document()
    signed = seal.sign(original)
    assert signed.startswith(original)
    assert verify_pdf(signed, seal.certificate).valid
    assert PdfReader(BytesIO(signed)).trailer["/ID"] == PdfReader(BytesIO(original)).trailer["/ID"]
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    text = _run("pdftotext", str(path), "-")
    assert text.returncode == 0 and b"Signed by the seal" in text.stdout


def test_a_file_without_final_newline_gets_a_well_formed_update(seal: Seal) -> None:
    original = _pypdf_document(final_newline=False)
    signed = seal.sign(original)
    assert signed[len(original) : len(original) + 1] == b"\n"
    assert verify_pdf(signed, seal.certificate).valid
    assert PdfReader(BytesIO(signed), strict=True).trailer["/Root"]["/AcroForm"]["/SigFlags"] == 3


def test_a_second_signature_leaves_the_first_revision_verifiable(seal: Seal, signed: bytes, tmp_path: Path) -> None:
    later = SIGNING_TIME + timedelta(days=1)
    twice = seal.sign(signed, later)
    assert twice.startswith(signed)
    report = verify_pdf(twice, seal.certificate)
    assert report.valid and report.signing_time == later, "the latest signature is the one reported"
    assert set(PdfReader(BytesIO(twice)).get_fields()) == {"Signature1", "Signature2"}
    first_revision = verify_pdf(twice[: len(signed)], seal.certificate)
    assert first_revision.valid and first_revision.signing_time == SIGNING_TIME
    path = tmp_path / "twice.pdf"
    path.write_bytes(twice)
    assert _run("pdfsig", str(path)).stdout.decode().count("Signature Field Name:") == 2


def test_naive_signing_time_is_utc(seal: Seal, original: bytes) -> None:
    report = verify_pdf(seal.sign(original, datetime(2026, 11, 23, 8, 0)), seal.certificate)
    assert report.valid and report.signing_time == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_sign_pdf_refuses_what_it_cannot_sign(seal: Seal, original: bytes) -> None:
    encrypted_writer = PdfWriter(clone_from=PdfReader(BytesIO(original)))
    encrypted_writer.encrypt("secret")
    encrypted = BytesIO()
    encrypted_writer.write(encrypted)
    cases = [
        (encrypted.getvalue(), seal.key, "PDF_ENCRYPTED"),
        (b"%PDF-1.7\nnot really a pdf", seal.key, "PDF_INVALID"),
        (original, generate_sm2_private_key_pem(), "CERT_KEY_MISMATCH"),
    ]
    for pdf, key, code in cases:
        with pytest.raises(CryptoError) as caught:
            sign_pdf(pdf, key, seal.certificate, signer_name="x", reason="x", location="x", signing_time=SIGNING_TIME)
        assert caught.value.code == code


def test_unsigned_truncated_and_garbage_files_are_reported_not_raised(original: bytes, signed: bytes) -> None:
    unsigned = verify_pdf(original)
    assert not unsigned.signed and not unsigned.valid and unsigned.errors
    for broken in (b"", b"not a pdf at all", signed[: len(signed) // 2], signed[:-700]):
        report = verify_pdf(broken)
        assert not report.valid and report.errors


def test_a_field_tree_that_loops_is_walked_once(original: bytes) -> None:
    writer = PdfWriter(clone_from=PdfReader(BytesIO(original)))
    node = DictionaryObject()
    reference = writer._add_object(node)
    node[NameObject("/Kids")] = ArrayObject([reference, reference])
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject({NameObject("/Fields"): ArrayObject([reference])})
    output = BytesIO()
    writer.write(output)
    report = verify_pdf(output.getvalue())
    assert not report.signed and report.errors == ["PDF 中没有签名"]
