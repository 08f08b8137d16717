"""GB/T 38540 seals (app.seals): encoding and decoding, the maker's signature, every refusal of the checks, the
seal a CMS signature carries, the files `flask keys init` and `bank-sim certify` make, and OpenSSL reading a seal
and verifying its maker's signature."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms, pem
from PIL import Image, ImageColor

from app.crypto import sm2_sign
from app.crypto.keys import ensure_keys
from app.crypto.openssl_provider import generate_sm2_private_key_pem, sm2_public_key_pem
from app.pdf.seal import SEAL_COLOUR
from app.pdf.sign import build_cms
from app.pki.certificates import CertificateAuthority, Usage, issue_certificate, load_certificate, make_root_ca
from app.pki.chain import TrustStore
from app.pki.names import Organization, organization_subject, person_subject, plain_subject
from app.pki.store import load_ca
from app.platform.errors import ValidationError
from app.seals.describe import describe_seal
from app.seals.issue import bank_seal_path, issue_seal, platform_seal_path
from app.seals.picture import seal_picture
from app.seals.seal import Picture, make_seal, maker_signature_valid, read_seal, seal_problems
from app.seals.structures import SES_SEAL_ATTRIBUTE_OID, SesSeal
from app.seals.verify import NO_SEAL_NOTE, SEALS_REQUIRED_FROM, check_signature_seal
from app.tools.banksim.keys import provision_simulated_banks
from tests.openssl_support import openssl, openssl_sm2_verifies

START = datetime(2026, 1, 1, tzinfo=UTC)
SIGNED_AT = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
ORG = Organization("测试运营有限公司", "91110000MA01000004")
PICTURE = Picture("PNG", b"\x89PNG\r\n\x1a\n picture", 40, 40)


def _root() -> CertificateAuthority:
    key = generate_sm2_private_key_pem()
    return make_root_ca(
        key, plain_subject("测试根证书", "测试"), valid_from=START, valid_until=START.replace(year=2046)
    )


@pytest.fixture(scope="module")
def root() -> CertificateAuthority:
    return _root()


def _certificate(root: CertificateAuthority, subject=None, usage: Usage = Usage.SEAL) -> bytes:  # type: ignore[no-untyped-def]
    public = sm2_public_key_pem(generate_sm2_private_key_pem())
    return issue_certificate(
        root,
        public,
        subject or organization_subject(ORG, "测试电子签章"),
        usage=usage,
        valid_from=START,
        valid_until=START.replace(year=2030),
    )


@pytest.fixture(scope="module")
def signer(root: CertificateAuthority) -> bytes:
    return _certificate(root)


@pytest.fixture(scope="module")
def seal_der(root: CertificateAuthority, signer: bytes) -> bytes:
    return make_seal(
        root, name=ORG.legal_name, signer_certificate_pem=signer, picture=PICTURE, created=START, es_id="ES1"
    )


def _resigned(seal_der: bytes, ca: CertificateAuthority, change: Callable[[SesSeal], None]) -> bytes:
    """The seal with `change` made to its SES_SealInfo and signed again by `ca` (a maker's own mistake)."""
    seal = SesSeal.load(seal_der).copy()
    change(seal)
    info = seal["eseal_info"]
    seal["signed_value"] = sm2_sign(ca.private_key_pem, info.dump(force=True))
    return seal.dump(force=True)


def test_a_seal_round_trips_with_the_standards_header_and_fields(seal_der: bytes, signer: bytes) -> None:
    seal = read_seal(seal_der)
    assert (seal.name, seal.es_id, seal.seal_type, seal.cert_list_type) == (ORG.legal_name, "ES1", 1, 1)
    assert seal.signer_certificates == (load_certificate(signer).dump(),)
    assert (seal.valid_start, seal.valid_end) == (START, START.replace(year=2030)), "the certificate's validity"
    assert seal.picture == PICTURE and seal.created == START and seal.maker_name == "测试根证书"
    assert SesSeal.load(seal_der).dump(force=True) == seal_der, "DER: the same bytes when encoded again"
    header = SesSeal.load(seal_der)["eseal_info"]["header"].native
    assert header == {"id": "ES", "version": 4, "vid": "CUNGUAN"}


def test_the_makers_signature_covers_the_seal_info(seal_der: bytes, root: CertificateAuthority, signer: bytes) -> None:
    seal = read_seal(seal_der)
    assert maker_signature_valid(seal)
    assert (
        seal_problems(seal, signer=load_certificate(signer), at=SIGNED_AT, makers=TrustStore.of([root.certificate_pem]))
        == []
    )
    renamed = SesSeal.load(seal_der).copy()
    renamed["eseal_info"]["property"]["name"] = "伪造运营有限公司"  # the maker's signature stays as it was
    forged = read_seal(renamed.dump(force=True))
    assert forged.name == "伪造运营有限公司" and not maker_signature_valid(forged)
    problems = seal_problems(forged, signer=load_certificate(signer), at=SIGNED_AT, makers=None)
    assert problems == ["电子印章的制章者签名验证失败（印章被篡改或伪造）"]


def test_a_seal_from_another_maker_is_refused(root: CertificateAuthority, signer: bytes) -> None:
    other = _root()
    foreign = read_seal(make_seal(other, name="x", signer_certificate_pem=signer, picture=PICTURE, created=START))
    certificate = load_certificate(signer)
    assert maker_signature_valid(foreign)
    assert seal_problems(foreign, signer=certificate, at=SIGNED_AT, makers=TrustStore.of([root.certificate_pem])) == [
        "电子印章的制章者“测试根证书”不是受信任的平台 CA"
    ]
    assert seal_problems(foreign, signer=certificate, at=SIGNED_AT, makers=None) == [], "no anchors: as it is"
    pinned_signer = TrustStore.of([signer])  # the seal certificate pinned alone: its own issuer may make seals
    assert seal_problems(foreign, signer=certificate, at=SIGNED_AT, makers=pinned_signer) == [
        "电子印章的制章者“测试根证书”不是受信任的平台 CA"
    ], "another root did not issue the pinned certificate"
    ours = read_seal(make_seal(root, name="x", signer_certificate_pem=signer, picture=PICTURE, created=START))
    assert seal_problems(ours, signer=certificate, at=SIGNED_AT, makers=pinned_signer) == []


@pytest.mark.parametrize("at", [START - timedelta(seconds=1), START.replace(year=2030) + timedelta(seconds=1), None])
def test_a_seal_is_refused_outside_its_validity(seal_der: bytes, signer: bytes, at: datetime | None) -> None:
    problems = seal_problems(read_seal(seal_der), signer=load_certificate(signer), at=at, makers=None)
    assert problems == ["签署时电子印章不在有效期内" if at else "签名未注明签署时间，无法核对电子印章有效期"]


def test_a_seal_whose_cert_list_lacks_the_signer_is_refused(seal_der: bytes, root: CertificateAuthority) -> None:
    another = load_certificate(_certificate(root))
    problems = seal_problems(read_seal(seal_der), signer=another, at=SIGNED_AT, makers=None)
    assert problems == ["电子印章的签章者证书列表中没有本签名的证书（印章不属于签名者）"]


def test_a_personal_seal_is_refused_for_an_organisation(
    seal_der: bytes, root: CertificateAuthority, signer: bytes
) -> None:
    def personal(seal: SesSeal) -> None:
        seal["eseal_info"]["property"]["type"] = 2

    problems = seal_problems(
        read_seal(_resigned(seal_der, root, personal)), signer=load_certificate(signer), at=SIGNED_AT, makers=None
    )
    assert problems == ["机构签名须使用单位印章（电子印章类型不是单位印章）"]


def test_what_is_no_seal_is_refused_in_chinese(seal_der: bytes, root: CertificateAuthority) -> None:
    for garbage in (b"", b"\x30\x03\x02\x01\x01", seal_der[:-5]):
        with pytest.raises(ValidationError, match="无法解析电子印章"):
            read_seal(garbage)

    def version_one(seal: SesSeal) -> None:
        seal["eseal_info"]["header"]["version"] = 1

    with pytest.raises(ValidationError, match="不是 GB/T 38540 第 4 版电子印章"):
        read_seal(_resigned(seal_der, root, version_one))
    with pytest.raises(ValidationError, match="带时区"):
        make_seal(
            root, name="x", signer_certificate_pem=_certificate(root), picture=PICTURE, created=datetime(2026, 1, 1)
        )


def _signer_info(key: bytes, certificate: bytes, seals: list[bytes]) -> cms.SignerInfo:
    signed = build_cms(b"\x00" * 32, key, load_certificate(certificate), SIGNED_AT)
    info = cms.ContentInfo.load(signed)["content"]["signer_infos"][0]
    extra = [cms.CMSAttribute({"type": SES_SEAL_ATTRIBUTE_OID, "values": [SesSeal.load(item) for item in seals]})]
    if seals:
        info["signed_attrs"] = cms.CMSAttributes([*info["signed_attrs"], *extra])
    return info


def test_the_seal_a_signature_carries_is_checked(tmp_path: Path) -> None:
    ensure_keys(tmp_path, START)
    key, certificate = (tmp_path / "platform.key.pem").read_bytes(), (tmp_path / "platform.cert.pem").read_bytes()
    seal = platform_seal_path(tmp_path).read_bytes()
    makers = TrustStore.of([load_ca(tmp_path).certificate_pem])
    signed = build_cms(b"\x00" * 32, key, load_certificate(certificate), SIGNED_AT, seal=seal)
    signer = cms.ContentInfo.load(signed)["content"]["signer_infos"][0]
    report, note = check_signature_seal(signer, load_certificate(certificate), makers, SIGNED_AT)
    assert report is not None and report.valid and note is None
    assert report.as_dict()["name"] == "存管平台演示运营有限公司" and report.as_dict()["verdict"] == "电子印章有效"
    assert report.as_dict()["issuer"] == "存管平台根证书" and report.as_dict()["type"] == "单位印章"

    unsealed = _signer_info(key, certificate, [])
    report, note = check_signature_seal(unsealed, load_certificate(certificate), makers, SIGNED_AT)
    assert report is not None and report.errors == ["机构签名缺少电子印章（GB/T 38540 SES_Seal）"]
    before = SEALS_REQUIRED_FROM - timedelta(seconds=1)
    assert check_signature_seal(unsealed, load_certificate(certificate), makers, before) == (None, NO_SEAL_NOTE)

    twice = _signer_info(key, certificate, [seal, seal])
    report, _ = check_signature_seal(twice, load_certificate(certificate), makers, SIGNED_AT)
    assert report is not None and report.errors == ["一个签名只能携带一枚电子印章"]


def test_a_party_signs_without_a_seal_and_may_not_carry_one(tmp_path: Path) -> None:
    ensure_keys(tmp_path, START)
    ca = load_ca(tmp_path)
    key = generate_sm2_private_key_pem()
    person = issue_certificate(
        ca,
        sm2_public_key_pem(key),
        person_subject("张三", "11010519491231002X"),
        usage=Usage.PERSONAL,
        valid_from=START,
        valid_until=START.replace(year=2030),
    )
    makers = TrustStore.of([ca.certificate_pem])
    assert check_signature_seal(_signer_info(key, person, []), load_certificate(person), makers, SIGNED_AT) == (
        None,
        None,
    )
    personal_seal = issue_seal(tmp_path, person, now=START)
    report, _ = check_signature_seal(
        _signer_info(key, person, [personal_seal]), load_certificate(person), makers, SIGNED_AT
    )
    assert report is not None and report.errors == ["个人签名不使用电子印章：签名证书不是机构证书"]


def test_keys_init_and_bank_certification_make_the_seals(tmp_path: Path) -> None:
    platform, banks = tmp_path / "platform", tmp_path / "banks"
    provision_simulated_banks(platform, banks, ["ceb", "icbc"], certificate_valid_from=START)
    made = platform_seal_path(platform).read_bytes()
    seal = read_seal(made)
    assert seal.name == "存管平台演示运营有限公司" and seal.picture.kind == "PNG"
    assert seal.picture.data.startswith(b"\x89PNG\r\n\x1a\n") and (seal.picture.width_mm, seal.picture.height_mm) == (
        40,
        40,
    )
    ensure_keys(platform)
    assert platform_seal_path(platform).read_bytes() == made, "a fitting seal is kept"
    for code in ("ceb", "icbc"):
        kept, own = bank_seal_path(platform / "banks", code), bank_seal_path(banks, code)
        assert kept.read_bytes() == own.read_bytes(), "the bank holds the seal the platform keeps"
        bank = read_seal(own.read_bytes())
        assert bank.name.endswith("（模拟）") and bank.signer_certificates == (
            load_certificate((banks / f"{code}.cert.pem").read_bytes()).dump(),
        )
    platform_seal_path(platform).unlink()
    ensure_keys(platform)  # an install from before seals: its existing key and certificate get one
    assert read_seal(platform_seal_path(platform).read_bytes()).signer_certificates == seal.signer_certificates
    with pytest.raises(ValidationError, match="只能为本平台 CA 签发的证书制作电子印章"):
        issue_seal(platform, _certificate(_root()))


def test_the_picture_is_the_red_seal_on_a_transparent_ground() -> None:
    picture = seal_picture("测试运营有限公司")
    image = Image.open(io.BytesIO(picture.data)).convert("RGBA")
    assert (picture.kind, picture.width_mm, picture.height_mm) == ("PNG", 40, 40) and image.size == (315, 315)
    assert image.getpixel((2, 2))[3] == 0, "outside the ring: transparent"
    assert image.getpixel((157, 157)) == (*ImageColor.getrgb(SEAL_COLOUR), 255), "the star's centre: seal red"
    assert seal_picture("测试运营有限公司") is picture, "made once per name"


def test_show_seal_describes_it_in_chinese(seal_der: bytes, root: CertificateAuthority) -> None:
    lines = describe_seal(read_seal(seal_der), TrustStore.of([root.certificate_pem]))
    assert "印章名称：测试运营有限公司" in lines and "印章类型：单位印章" in lines
    assert "有效期：2026-01-01 08:00:00（北京时间） 至 2030-01-01 08:00:00（北京时间）" in lines
    assert "制章者签名：有效" in lines and lines[-1] == "制章者是否为本平台 CA：是"
    assert describe_seal(read_seal(seal_der), TrustStore.of([]))[-1] == "制章者是否为本平台 CA：否（不受信任）"


def test_openssl_reads_the_seal_and_verifies_its_makers_signature(
    seal_der: bytes, root: CertificateAuthority, tmp_path: Path
) -> None:
    (tmp_path / "seal.der").write_bytes(seal_der)
    parsed = openssl("asn1parse", "-inform", "DER", "-in", str(tmp_path / "seal.der"))
    assert parsed.returncode == 0, parsed.stderr
    lines = [line.split("prim: ")[-1] for line in parsed.stdout.decode().splitlines()]
    assert lines[3:6] == ["IA5STRING         :ES", "INTEGER           :04", "IA5STRING         :CUNGUAN"]
    assert "IA5STRING         :PNG" in lines and lines[-2] == "OBJECT            :SM2-with-SM3"
    assert lines[-1].startswith("BIT STRING"), "SES_Seal: sealInfo, cert, signAlgID, signedValue"
    seal = SesSeal.load(seal_der)
    maker, info, signature = (
        pem.armor("CERTIFICATE", seal["cert"].native),
        seal["eseal_info"].dump(),
        seal["signed_value"].native,
    )
    assert openssl_sm2_verifies(maker, info, signature, tmp_path), "the maker signed the DER of SES_SealInfo"
    assert not openssl_sm2_verifies(maker, info[:-1] + bytes([info[-1] ^ 1]), signature, tmp_path)
