"""PDF verification after issue 16: whatever an update after a signature changes, other than adding a later
signature, is a modification - even when a countersignature follows it - and a signed file whose signatures do
not verify is never countersigned. The platform's first signature certifies the file (DocMDP P=2), and a
signer's certificate must be valid at the signing time and made for signing.

The attack files are written with pypdf's own incremental writer, as an attacker's tool would."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pem, x509
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    BooleanObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    NumberObject,
    TextStringObject,
)
from sqlalchemy import select

from app.agreements.countersign import COUNTERSIGN_JOB
from app.crypto import sm2_sign, sm3
from app.crypto.keys import generate_sm2_private_key_pem, make_self_signed_certificate
from app.db.models import Agreement, Job
from app.pdf.sign import PreparedSignature, prepare_signature, sign_digest, sign_pdf
from app.pdf.verify import verify_pdf_signatures
from app.platform.errors import CryptoError
from app.platform.runtime import Runtime
from app.queue.worker import run_one
from tests.factories import confirmed_deal
from tests.pdf_samples import text_pdf

WHEN = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
Seal = tuple[bytes, bytes]  # (private key PEM, certificate PEM)


def _document() -> bytes:
    """Two pages; the first says the amount."""
    return text_pdf(b"Amount: 1000 yuan", b"Signatures")


@pytest.fixture(scope="module")
def platform_seal(keys_dir: Path) -> Seal:
    return (keys_dir / "platform.key.pem").read_bytes(), (keys_dir / "platform.cert.pem").read_bytes()


@pytest.fixture(scope="module")
def bank_seal(keys_dir: Path, bank_private_key: Callable[[str], bytes]) -> Seal:
    return bank_private_key("ceb"), (keys_dir / "banks" / "ceb.cert.pem").read_bytes()


@pytest.fixture(scope="module")
def certified(platform_seal: Seal) -> bytes:
    """The platform's certification signature on the document, as the agreement service makes it."""
    return sign_pdf(
        _document(),
        *platform_seal,
        signer_name="存管平台",
        reason="协议",
        location="北京",
        signing_time=WHEN,
        certify=True,
    )


def _sign(pdf: bytes, seal: Seal, *, at: datetime = WHEN, certify: bool = False) -> bytes:
    return sign_pdf(pdf, *seal, signer_name="签署方", reason="确认", location="北京", signing_time=at, certify=certify)


def _countersign_anyway(pdf: bytes, seal: Seal) -> bytes:
    """A countersignature added by a tool that checks nothing (the platform's own path refuses such files)."""
    prepared = prepare_signature(pdf, signer_name="银行", reason="确认", location="北京", signing_time=WHEN)
    return prepared.embed(sign_digest(prepared.digest, *seal, WHEN))


def _incremental(pdf: bytes, change: Callable[[PdfWriter], None]) -> bytes:
    writer = PdfWriter(BytesIO(pdf), incremental=True)
    change(writer)
    output = BytesIO()
    writer.write(output)
    return output.getvalue()


def _appearance(writer: PdfWriter, text: bytes) -> DecodedStreamObject:
    """A form XObject painting a white box with `text` over the amount."""
    stream = DecodedStreamObject()
    stream.set_data(b"1 g 0 0 240 40 re f 0 g BT /Helvetica 24 Tf 2 10 Td (" + text + b") Tj ET")
    stream.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Form"),
            NameObject("/BBox"): ArrayObject([NumberObject(value) for value in (0, 0, 240, 40)]),
        }
    )
    return writer._add_object(stream)


def _over_the_amount(
    kind: str, rect: tuple[float, float, float, float] = (70, 690, 310, 730)
) -> Callable[[PdfWriter], None]:
    """An annotation on page 1 (at `rect`, where the amount is) that shows another amount: a FreeText note, a
    signature widget with an appearance (what the finding describes: it passed as 'a later signature'), or a text
    field's widget."""

    def change(writer: PdfWriter) -> None:
        annotation = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Annot"),
                NameObject("/Rect"): ArrayObject([FloatObject(value) for value in rect]),
                NameObject("/P"): writer.pages[0].indirect_reference,
                NameObject("/AP"): DictionaryObject({NameObject("/N"): _appearance(writer, b"Amount: 9000 yuan")}),
            }
        )
        if kind == "freetext":
            annotation[NameObject("/Subtype")] = NameObject("/FreeText")
            annotation[NameObject("/DA")] = TextStringObject("/Helv 24 Tf 0 g")
        else:
            annotation[NameObject("/Subtype")] = NameObject("/Widget")
            annotation[NameObject("/FT")] = NameObject("/Sig" if kind == "signature_widget" else "/Tx")
            annotation[NameObject("/T")] = TextStringObject("Amount")
        reference = writer._add_object(annotation)
        writer.pages[0][NameObject("/Annots")] = ArrayObject([reference])
        if kind != "freetext":
            writer._root_object["/AcroForm"]["/Fields"].append(reference)

    return change


@pytest.mark.parametrize("kind", ["freetext", "signature_widget", "text_widget"])
def test_an_annotation_over_page_one_after_signing_is_a_modification_and_is_not_countersigned(
    certified: bytes, bank_seal: Seal, kind: str
) -> None:
    changed = _incremental(certified, _over_the_amount(kind))
    with pytest.raises(CryptoError) as refused:
        _sign(changed, bank_seal)
    assert refused.value.code == "PDF_SIGNATURE_BROKEN"
    assert "拒绝追加签名" in refused.value.message

    platform, bank = verify_pdf_signatures(_countersign_anyway(changed, bank_seal))
    assert bank.valid, "the countersignature itself is sound: it signed the changed file"
    assert platform.intact and platform.signature_valid and not platform.valid
    expected = (
        "签署后第 1 页新增的签名控件带有覆盖页面的外观"
        if kind == "signature_widget"
        else "签署后第 1 页新增了注释/表单控件"
    )
    assert expected in platform.changes_after_signing
    assert "签名后追加的更新修改了文件内容" in platform.errors


def _need_appearances(writer: PdfWriter) -> None:
    writer._root_object["/AcroForm"][NameObject("/NeedAppearances")] = BooleanObject(True)


def _text_field(writer: PdfWriter) -> None:
    """A text field in the form, on no page."""
    field = DictionaryObject(
        {
            NameObject("/FT"): NameObject("/Tx"),
            NameObject("/T"): TextStringObject("x"),
            NameObject("/V"): TextStringObject("9000"),
        }
    )
    writer._root_object["/AcroForm"]["/Fields"].append(writer._add_object(field))


def _drop_certification(writer: PdfWriter) -> None:
    del writer._root_object["/Perms"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_need_appearances, "签署后 /AcroForm 被修改"),
        (_text_field, "签署后 /AcroForm 新增了签名以外的字段"),
        (_drop_certification, "签署后文档目录被修改"),
    ],
)
def test_form_and_catalog_changes_after_signing_are_modifications(
    certified: bytes, bank_seal: Seal, change: Callable[[PdfWriter], None], expected: str
) -> None:
    changed = _incremental(certified, change)
    with pytest.raises(CryptoError) as refused:
        _sign(changed, bank_seal)
    assert refused.value.code == "PDF_SIGNATURE_BROKEN"
    platform, bank = verify_pdf_signatures(_countersign_anyway(changed, bank_seal))
    assert bank.valid and not platform.valid
    assert expected in platform.changes_after_signing


def _appended_content(writer: PdfWriter) -> None:
    stream = DecodedStreamObject()
    stream.set_data(b"1 g 70 690 240 40 re f 0 g BT /F1 24 Tf 72 700 Td (Amount: 9000 yuan) Tj ET")
    page = writer.pages[0]
    page[NameObject("/Contents")] = ArrayObject([page.raw_get("/Contents"), writer._add_object(stream)])


def _rewritten_content(writer: PdfWriter) -> None:
    stream = writer.pages[0]["/Contents"].get_object()
    stream.set_data(b"BT /F1 24 Tf 72 700 Td (Amount: 9000 yuan) Tj ET")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_appended_content, "签署后第 1 页被修改（内容、资源或属性）"),
        (_rewritten_content, "签署后第 1 页的内容流被修改"),
    ],
)
def test_new_or_changed_page_content_after_signing_is_a_modification(
    certified: bytes, bank_seal: Seal, change: Callable[[PdfWriter], None], expected: str
) -> None:
    changed = _incremental(certified, change)
    assert b"9000" in subprocess.run(["pdftotext", "-", "-"], input=changed, capture_output=True, check=True).stdout
    with pytest.raises(CryptoError) as refused:
        _sign(changed, bank_seal)
    assert refused.value.code == "PDF_SIGNATURE_BROKEN"
    platform, _ = verify_pdf_signatures(_countersign_anyway(changed, bank_seal))
    assert not platform.valid and expected in platform.changes_after_signing


def _swapped_pages(writer: PdfWriter) -> None:
    kids = writer._root_object["/Pages"]["/Kids"]
    kids[0], kids[1] = kids[1], kids[0]


def test_pages_put_in_another_order_after_signing_are_named_as_such(certified: bytes, bank_seal: Seal) -> None:
    """The same page objects in another order: not 'added or replaced' but what it is, a page swap."""
    platform, _ = verify_pdf_signatures(_countersign_anyway(_incremental(certified, _swapped_pages), bank_seal))
    assert not platform.valid
    assert platform.changes_after_signing[0] == "签署后页面顺序被调换（第 1、2 页不再是签署时的页面）"
    removed = _incremental(certified, lambda writer: writer._root_object["/Pages"]["/Kids"].pop())
    (alone,) = verify_pdf_signatures(removed)
    assert "签署后页面被增删或替换（2 页变为 1 页）" in alone.changes_after_signing


def test_a_file_certified_to_allow_no_change_takes_no_later_signature(platform_seal: Seal, bank_seal: Seal) -> None:
    """DocMDP P=1: even a countersignature is a modification, and the platform does not add one."""
    prepared = prepare_signature(
        _document(), signer_name="x", reason="x", location="x", signing_time=WHEN, certify=True
    )
    no_changes = prepared.document.replace(b"/P 2 /V /1.2", b"/P 1 /V /1.2")
    prepared = PreparedSignature(no_changes, prepared.start, prepared.end)
    locked = prepared.embed(sign_digest(prepared.digest, *platform_seal, WHEN))
    (alone,) = verify_pdf_signatures(locked)
    assert alone.valid and alone.certification_level == 1
    with pytest.raises(CryptoError) as refused:
        _sign(locked, bank_seal)
    assert refused.value.code == "PDF_NO_CHANGES_ALLOWED"
    certification, countersignature = verify_pdf_signatures(_countersign_anyway(locked, bank_seal))
    assert countersignature.valid and not certification.valid
    assert certification.changes_after_signing[0].startswith("认证签名（DocMDP P=1）不允许签署后的任何改动")


def _certificate(key: bytes, *, valid_from: datetime, valid_days: int, key_usage: set[str] | None = None) -> bytes:
    """A self-signed seal certificate; `key_usage` replaces the signing usages it is made with."""
    made = make_self_signed_certificate(key, "测试签章", "Cunguan", valid_days=valid_days, valid_from=valid_from)
    if key_usage is None:
        return made
    certificate = x509.Certificate.load(pem.unarmor(made)[2])
    tbs = certificate["tbs_certificate"].copy()
    tbs["extensions"] = [{"extn_id": "key_usage", "critical": True, "extn_value": key_usage}]
    signature = sm2_sign(key, tbs.dump())
    algorithm = certificate["signature_algorithm"].native
    rebuilt = x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": algorithm, "signature_value": signature})
    return pem.armor("CERTIFICATE", rebuilt.dump())


@pytest.mark.parametrize(
    ("valid_from", "valid_days", "key_usage", "expected"),
    [
        (WHEN - timedelta(days=400), 365, None, "不在证书有效期内"),  # expired before the signing time
        (WHEN + timedelta(days=1), 365, None, "不在证书有效期内"),  # not yet valid at the signing time
        (WHEN - timedelta(days=1), 365, {"key_encipherment", "key_cert_sign"}, "密钥用途不允许数字签名"),
    ],
)
def test_a_certificate_not_valid_at_signing_or_not_for_signing_makes_the_signature_invalid(
    valid_from: datetime, valid_days: int, key_usage: set[str] | None, expected: str
) -> None:
    key = generate_sm2_private_key_pem()
    certificate = _certificate(key, valid_from=valid_from, valid_days=valid_days, key_usage=key_usage)
    signed = _sign(_document(), (key, certificate))
    (report,) = verify_pdf_signatures(signed, certificate)
    assert report.intact and report.signature_valid and report.trusted and report.covers_whole_file
    assert not report.certificate_valid and not report.valid
    assert any(expected in error for error in report.errors)
    with pytest.raises(CryptoError) as refused:
        _sign(signed, (key, certificate))
    assert refused.value.code == "PDF_SIGNATURE_BROKEN"


def test_the_normal_flow_is_certified_and_verifies_clean(certified: bytes, bank_seal: Seal, tmp_path: Path) -> None:
    countersigned = sign_pdf(
        certified,
        *bank_seal,
        signer_name="银行",
        reason="确认",
        location="北京",
        signing_time=WHEN + timedelta(hours=1),
    )
    platform, bank = verify_pdf_signatures(countersigned)
    assert platform.valid and bank.valid and platform.changes_after_signing == []
    assert (platform.certification_level, bank.certification_level) == (2, None)
    catalog = PdfReader(BytesIO(countersigned)).trailer["/Root"]
    signature = catalog["/AcroForm"]["/Fields"][0].get_object()["/V"]
    assert catalog["/Perms"].raw_get("/DocMDP").idnum == signature.indirect_reference.idnum
    (reference,) = signature["/Reference"]
    assert (reference["/TransformMethod"], reference["/TransformParams"]["/P"]) == ("/DocMDP", 2)
    with pytest.raises(CryptoError) as refused:
        _sign(certified, bank_seal, certify=True)
    assert refused.value.code == "PDF_ALREADY_SIGNED", "a certification signature is the first one only"

    path = tmp_path / "countersigned.pdf"
    path.write_bytes(countersigned)
    listed = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=30)
    assert listed.stdout.count("Signature Field Name:") == 2, listed.stdout + listed.stderr
    assert "存管平台电子签章" in listed.stdout and "存管银行电子签章（ceb）" in listed.stdout


@pytest.mark.usefixtures("users")
def test_the_countersignature_job_refuses_a_changed_agreement_for_good(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored agreement gained a widget over page 1 after the platform signed: the bank is never asked, and
    the job is dead (no retry) with PDF_SIGNATURE_BROKEN, the file left as it was."""
    deal_id = confirmed_deal(rt)
    with rt.db.uow() as uow:
        agreement = uow.session.scalars(select(Agreement).where(Agreement.deal_id == deal_id)).one()
        changed = _incremental(agreement.pdf, _over_the_amount("signature_widget"))
        agreement.pdf, agreement.pdf_sm3 = changed, sm3(changed).hex()
        uow.commit()
    asked: list[str] = []
    gateway = rt.gateway

    class Bank:
        """The bank's gateway, but for signing, which the test records."""

        def __init__(self, code: str) -> None:
            self.real = gateway(code)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        def request_signature(self, request_id: str, document_sm3: bytes, purpose: str) -> bytes:
            asked.append(request_id)
            raise AssertionError("the bank must not be asked to sign a changed file")

    monkeypatch.setattr(rt, "gateway", Bank)
    while run_one(rt, "test-worker"):
        pass
    with rt.db.uow() as uow:
        (job,) = uow.session.scalars(select(Job).where(Job.kind == COUNTERSIGN_JOB))
        assert job.status == "dead" and (job.last_error or "").startswith("PDF_SIGNATURE_BROKEN")
        assert "签署后第 1 页新增的签名控件带有覆盖页面的外观" in (job.last_error or "")
        assert uow.session.scalars(select(Agreement.pdf).where(Agreement.deal_id == deal_id)).one() == changed
    assert asked == []
