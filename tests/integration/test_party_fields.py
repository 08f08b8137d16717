"""Signature fields reserved for the parties (app/pdf/fields.py): the platform certifies a file with empty fields
at the parties' lines, each party's signature fills its field with a visible image, and the verifier accepts
exactly that — the field gaining its value and appearance — while a filled field that moved is a modification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.crypto.openssl_provider import generate_sm2_private_key_pem, sm2_public_key_pem
from app.pdf import fields
from app.pdf.appearance import signature_appearance
from app.pdf.sign import sign_pdf
from app.pdf.verify import verify_pdf_signatures
from app.pki.certificates import CertificateAuthority, Usage, issue_certificate, make_root_ca
from app.pki.names import person_subject, plain_subject
from app.platform.errors import CryptoError
from tests.pdf_samples import text_pdf

WHEN = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
NAMES = ["PartyPayer", "PartyPayee"]


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    key = generate_sm2_private_key_pem()
    subject = plain_subject("测试根证书", "测试平台")
    return make_root_ca(key, subject, valid_from=WHEN - timedelta(days=1), valid_until=WHEN + timedelta(days=30))


def _holder(ca: CertificateAuthority, subject: object, usage: Usage) -> tuple[bytes, bytes]:
    key = generate_sm2_private_key_pem()
    window = {"valid_from": WHEN - timedelta(hours=1), "valid_until": WHEN + timedelta(days=1)}
    return key, issue_certificate(ca, sm2_public_key_pem(key), subject, usage=usage, **window)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certified(ca: CertificateAuthority) -> bytes:
    pdf = text_pdf(b"Sign: when both parties have signed", b"Sign:", b"Sign:")
    places = fields.places_for(pdf, NAMES, label="Sign:")
    assert [place.page for place in places] == [1, 2], "the exact label only, the last ones"
    reserved = fields.reserve_signature_fields(pdf, places)
    platform = _holder(ca, plain_subject("存管平台"), Usage.SEAL)
    return sign_pdf(reserved, *platform, signer_name="p", reason="r", location="l", signing_time=WHEN, certify=True)


def _fill(ca: CertificateAuthority, pdf: bytes, field: str, name: str) -> bytes:
    key, certificate = _holder(ca, person_subject(name, "11010519491231002X"), Usage.PERSONAL)
    image = signature_appearance(name, fields.SIGNATURE_WIDTH, fields.SIGNATURE_HEIGHT)
    return fields.sign_field(
        pdf, field, image, key, certificate, signer_name=name, reason="r", location="l", signing_time=WHEN
    )


def test_parties_fill_their_reserved_fields_after_the_certification_and_nothing_counts_as_changed(
    ca: CertificateAuthority, certified: bytes
) -> None:
    signed = _fill(ca, _fill(ca, certified, "PartyPayer", "张三"), "PartyPayee", "李四")
    platform, payer, payee = verify_pdf_signatures(signed, [ca.certificate_pem])
    assert platform.certification_level == 2 and platform.valid and platform.superseded_cleanly
    assert payer.valid and not payer.changes_after_signing and payee.valid and payee.covers_whole_file
    assert (payer.field_name, payer.signer_subject, payee.signer_subject) == ("PartyPayer", "张三", "李四")
    with pytest.raises(CryptoError) as twice:
        _fill(ca, signed, "PartyPayer", "王五")
    assert twice.value.code == "PDF_FIELD_SIGNED"
    with pytest.raises(CryptoError) as unknown:
        _fill(ca, signed, "PartyOther", "王五")
    assert unknown.value.message == "协议中没有为该当事人预留的签名位置"


def test_a_filled_field_that_moved_or_grew_is_a_modification(
    ca: CertificateAuthority, certified: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pypdf.generic import ArrayObject, FloatObject, NameObject

    reserved_field = fields._reserved_field

    def moved(reader: object, name: str):  # type: ignore[no-untyped-def]
        reference, widget = reserved_field(reader, name)
        widget[NameObject("/Rect")] = ArrayObject([FloatObject(value) for value in (0, 0, 595, 842)])
        return reference, widget

    monkeypatch.setattr(fields, "_reserved_field", moved)
    platform, payer = verify_pdf_signatures(_fill(ca, certified, "PartyPayer", "张三"), [ca.certificate_pem])
    assert payer.valid and not platform.valid
    assert any("被修改" in change for change in platform.changes_after_signing)


def test_the_certification_may_follow_empty_fields_but_not_a_signature(
    ca: CertificateAuthority, certified: bytes
) -> None:
    platform = _holder(ca, plain_subject("存管平台"), Usage.SEAL)
    with pytest.raises(CryptoError) as refused:
        sign_pdf(certified, *platform, signer_name="p", reason="r", location="l", signing_time=WHEN, certify=True)
    assert refused.value.message == "认证签名必须是文件的第一个签名"
    with pytest.raises(CryptoError):
        fields.reserve_signature_fields(certified, fields.places_for(certified, NAMES, label="Sign:"))
