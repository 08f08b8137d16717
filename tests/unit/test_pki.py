"""The platform CA (app.pki): names, issuance, certificate paths, CRLs and the key folder, and OpenSSL reading
what it issues."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import crl, pem, x509

from app.crypto.keys import ensure_keys, make_self_signed_certificate
from app.crypto.openssl_provider import generate_sm2_private_key_pem, sm2_public_key_pem
from app.pki.certificates import (
    CertificateAuthority,
    Usage,
    issue_certificate,
    load_certificate,
    make_root_ca,
    serial_hex,
)
from app.pki.chain import TrustStore, validate_path
from app.pki.crl import Revocation, build_crl, read_crl
from app.pki.names import (
    Organization,
    is_valid_uscc,
    organization_subject,
    person_subject,
    plain_subject,
    uscc_check_character,
)
from app.pki.seals import ensure_platform_seal, issue_bank_seal, issue_tsa_certificate, legacy_platform_certificates
from app.pki.store import crl_path, ensure_root, load_ca, revocations, revoke, root_certificate_path, write_crl
from app.platform.errors import ValidationError

START = datetime(2026, 1, 1, tzinfo=UTC)
SIGNED_AT = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
ORG = Organization("测试运营有限公司", "91110000MA01000004")
DISTID = ("-vfyopt", "distid:1234567812345678")  # GM/T 0009's default signer id, which OpenSSL 3.0 needs told


@pytest.fixture(scope="module")
def root() -> CertificateAuthority:
    return make_root_ca(
        generate_sm2_private_key_pem(),
        plain_subject("测试根证书", "测试"),
        valid_from=START,
        valid_until=START.replace(year=2046),
    )


@pytest.fixture(scope="module")
def foreign_root() -> CertificateAuthority:
    return make_root_ca(
        generate_sm2_private_key_pem(),
        plain_subject("测试根证书", "测试"),
        valid_from=START,
        valid_until=START.replace(year=2046),
    )


def _issue(ca: CertificateAuthority, usage: Usage = Usage.SEAL, days: int = 365, start: datetime = START) -> bytes:
    public = sm2_public_key_pem(generate_sm2_private_key_pem())
    subject = organization_subject(ORG, "测试电子签章")
    return issue_certificate(
        ca, public, subject, usage=usage, valid_from=start, valid_until=start + timedelta(days=days)
    )


def _openssl(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *arguments], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)


def test_uscc_check_character_and_subjects_carry_legal_name_uscc_or_a_masked_id() -> None:
    assert is_valid_uscc("91110000MA01000004") and not is_valid_uscc("91110000MA01000005")
    assert uscc_check_character("91110000MA0100000") == "4"
    with pytest.raises(ValidationError):
        Organization("某公司", "91110000MA0100000I")  # I is not in the alphabet
    names = organization_subject(ORG, "测试电子签章").native
    assert names["organization_name"] == "测试运营有限公司" and names["common_name"] == "测试电子签章"
    assert names["serial_number"] == "91110000MA01000004"
    assert names["organization_identifier"] == "NTRCN-91110000MA01000004"
    person = person_subject("张三", "11010519491231002X")
    assert person.native == {"country_name": "CN", "common_name": "张三", "serial_number": "110***********002X"}
    assert b"11010519491231002X" not in person.dump(), "never the whole ID number"


def test_issued_certificates_have_the_usage_of_their_kind(root: CertificateAuthority) -> None:
    assert root.certificate.ca and set(root.certificate.key_usage_value.native) == {"key_cert_sign", "crl_sign"}
    seal = load_certificate(_issue(root))
    assert not seal.ca and set(seal.key_usage_value.native) == {"digital_signature", "non_repudiation"}
    assert seal.issuer == root.certificate.subject and seal.extended_key_usage_value is None
    assert seal.authority_key_identifier == root.certificate.key_identifier
    tsa = load_certificate(_issue(root, Usage.TSA))
    assert tsa.extended_key_usage_value.native == ["time_stamping"]
    assert "extended_key_usage" in tsa.critical_extensions


def test_issuance_refuses_validity_outside_the_ca_and_a_non_sm2_key(root: CertificateAuthority) -> None:
    with pytest.raises(ValidationError) as outside:
        _issue(root, start=START - timedelta(days=1))
    assert outside.value.code == "INVALID_VALIDITY"
    with pytest.raises(ValidationError) as backwards:
        _issue(root, days=-1)
    assert backwards.value.code == "INVALID_VALIDITY"
    ec = _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    converted = subprocess.run(["openssl", "pkey", "-pubout"], input=ec.stdout.encode(), capture_output=True)
    assert converted.returncode == 0 and converted.stdout.startswith(b"-----BEGIN PUBLIC KEY-----")
    with pytest.raises(ValidationError) as not_sm2:
        issue_certificate(
            root, converted.stdout, plain_subject("x"), usage=Usage.SEAL, valid_from=START, valid_until=SIGNED_AT
        )
    assert not_sm2.value.code == "INVALID_PUBLIC_KEY"


def test_a_path_to_the_root_is_trusted_and_named_up_to_the_root(root: CertificateAuthority) -> None:
    seal = load_certificate(_issue(root))
    result = validate_path(seal, [], TrustStore((root.certificate,)), at=[SIGNED_AT])
    assert result.valid and result.path_names == ["测试电子签章", "测试根证书"]


def test_a_foreign_issuer_a_self_signed_certificate_or_no_anchor_is_untrusted(
    root: CertificateAuthority, foreign_root: CertificateAuthority
) -> None:
    foreign = load_certificate(_issue(foreign_root))
    carried = validate_path(foreign, [foreign_root.certificate], TrustStore((root.certificate,)), at=[SIGNED_AT])
    assert not carried.trusted and "自签名证书" in (carried.untrusted_reason or ""), "its own root, carried along"
    alone = validate_path(foreign, [], TrustStore((root.certificate,)), at=[SIGNED_AT])
    assert not alone.trusted and "证书签发者未知或证书链断裂" in (alone.untrusted_reason or "")
    assert alone.path_names == ["测试电子签章"], "same names, other key: the signature decides, not the name"


def test_validity_at_the_signing_time_and_the_purpose_are_checked(root: CertificateAuthority) -> None:
    trust = TrustStore((root.certificate,))
    seal = load_certificate(_issue(root, days=30))
    expired = validate_path(seal, [], trust, at=[START + timedelta(days=31)])
    assert expired.trusted and any("证书已过期" in problem for problem in expired.problems)
    early = validate_path(seal, [], trust, at=[START - timedelta(days=1)])
    assert any("证书尚未生效" in problem for problem in early.problems)
    issuer_expired = validate_path(seal, [], trust, at=[datetime(2047, 1, 1, tzinfo=UTC)])
    assert any("签发者证书「测试根证书」的有效期" in problem for problem in issuer_expired.problems)
    tsa = load_certificate(_issue(root, Usage.TSA))
    as_signer = validate_path(tsa, [], trust, at=[SIGNED_AT])
    assert any("证书用途错误" in problem for problem in as_signer.problems)
    assert validate_path(tsa, [], trust, at=[SIGNED_AT], purpose="timestamping").valid
    assert not validate_path(seal, [], trust, at=[SIGNED_AT], purpose="timestamping").valid
    as_ca = validate_path(root.certificate, [], trust, at=[SIGNED_AT])
    assert as_ca.trusted and any("CA 证书不能用于签名" in problem for problem in as_ca.problems)


def test_a_crl_revokes_with_its_reason_and_only_from_its_issuer(
    root: CertificateAuthority, foreign_root: CertificateAuthority
) -> None:
    seal, other = load_certificate(_issue(root)), load_certificate(_issue(root))
    revoked_at = SIGNED_AT + timedelta(days=1)
    listed = [Revocation(seal.serial_number, revoked_at, "key_compromise")]
    crl_pem = build_crl(root, listed, this_update=revoked_at, next_update=revoked_at + timedelta(days=7), number=4)
    read = read_crl(crl_pem, root.certificate)
    assert read.number == 4 and read.next_update == revoked_at + timedelta(days=7)
    assert read.revoked == {seal.serial_number: listed[0]}
    loaded = crl.CertificateList.load(pem.unarmor(crl_pem)[2])
    assert loaded["tbs_cert_list"]["version"].native == "v2"
    trust = TrustStore((root.certificate,), (crl_pem,))
    refused = validate_path(seal, [], trust, at=[SIGNED_AT])
    assert refused.trusted and refused.revoked == listed[0] and not refused.valid
    assert any(f"（序列号 {serial_hex(seal)}）已于" in p and "原因：密钥泄露" in p for p in refused.problems)
    assert validate_path(other, [], trust, at=[SIGNED_AT]).valid
    with pytest.raises(ValidationError) as mismatch:
        read_crl(crl_pem, foreign_root.certificate)
    assert mismatch.value.code == "CRL_SIGNATURE_INVALID", "same name, other key"
    forged = build_crl(foreign_root, [Revocation(other.serial_number, revoked_at)], this_update=revoked_at,
                       next_update=revoked_at + timedelta(days=1), number=1)  # fmt: skip
    spoofed = validate_path(other, [], TrustStore((root.certificate,), (forged,)), at=[SIGNED_AT])
    assert spoofed.revoked is None and any("证书吊销列表无效" in problem for problem in spoofed.problems)
    with pytest.raises(ValidationError):
        Revocation(1, revoked_at, "because")


def test_openssl_verifies_the_chain_and_reads_the_crl(
    root: CertificateAuthority, foreign_root: CertificateAuthority, tmp_path: Path
) -> None:
    """OpenSSL 3.0 verifies SM2 certificate signatures with GM/T 0009's default id when told (-vfyopt), but has no
    way to be told for a CRL: the CRL's signature is checked with `pkeyutl` over its TBS, its entries read with
    `openssl crl`."""
    files = {"root": root.certificate_pem, "seal": _issue(root), "foreign": _issue(foreign_root)}
    for name, content in files.items():
        (tmp_path / f"{name}.pem").write_bytes(content)
    accepted = _openssl("verify", *DISTID, "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "seal.pem"))
    assert accepted.returncode == 0 and ": OK" in accepted.stdout, accepted.stderr
    refused = _openssl("verify", *DISTID, "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "foreign.pem"))
    assert refused.returncode != 0 and "verification failed" in refused.stderr, "same issuer name, other key"
    seal = load_certificate(files["seal"])
    crl_pem = build_crl(root, [Revocation(seal.serial_number, SIGNED_AT, "superseded")], this_update=SIGNED_AT,
                        next_update=SIGNED_AT + timedelta(days=7), number=2)  # fmt: skip
    (tmp_path / "crl.pem").write_bytes(crl_pem)
    text = _openssl("crl", "-in", str(tmp_path / "crl.pem"), "-noout", "-text")
    assert text.returncode == 0 and f"Serial Number: {serial_hex(seal)}" in text.stdout and "Superseded" in text.stdout
    assert "Version 2" in text.stdout and "Next Update" in text.stdout and "SM2-with-SM3" in text.stdout
    loaded = crl.CertificateList.load(pem.unarmor(crl_pem)[2])
    (tmp_path / "tbs.der").write_bytes(loaded["tbs_cert_list"].dump())
    (tmp_path / "signature.der").write_bytes(loaded["signature"].native)
    (tmp_path / "root.pub.pem").write_bytes(pem.armor("PUBLIC KEY", root.certificate.public_key.dump()))
    checked = _openssl(
        *("pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "root.pub.pem"), "-rawin", "-digest", "sm3"),
        *("-pkeyopt", "distid:1234567812345678", "-sigfile", str(tmp_path / "signature.der")),
        *("-in", str(tmp_path / "tbs.der")),
    )
    assert checked.returncode == 0 and "Signature Verified Successfully" in checked.stdout, checked.stderr


def test_the_key_folder_keeps_root_issued_and_revoked_across_restarts(tmp_path: Path) -> None:
    ensure_keys(tmp_path, START)
    root_pem = root_certificate_path(tmp_path).read_bytes()
    ensure_keys(tmp_path, START)
    assert root_certificate_path(tmp_path).read_bytes() == root_pem, "never replaced"
    seal = load_certificate((tmp_path / "platform.cert.pem").read_bytes())
    assert seal.issuer == load_certificate(root_pem).subject
    assert seal.subject.native["organization_identifier"].startswith("NTRCN-")
    first = read_crl(crl_path(tmp_path).read_bytes(), load_ca(tmp_path).certificate)
    assert first.revoked == {}
    with pytest.raises(ValidationError) as unknown:
        revoke(tmp_path, "0ABC", "key_compromise")
    assert unknown.value.code == "UNKNOWN_SERIAL"
    revoke(tmp_path, serial_hex(seal).lower(), "cessation_of_operation", at=SIGNED_AT)
    with pytest.raises(ValidationError) as twice:
        revoke(tmp_path, serial_hex(seal), "key_compromise")
    assert twice.value.code == "ALREADY_REVOKED"
    after = read_crl(crl_path(tmp_path).read_bytes(), load_ca(tmp_path).certificate)
    assert after.revoked[seal.serial_number].reason == "cessation_of_operation"
    assert (after.number or 0) > (first.number or 0)
    write_crl(tmp_path, days=2)
    renewed = read_crl(crl_path(tmp_path).read_bytes(), load_ca(tmp_path).certificate)
    assert renewed.number == (after.number or 0) + 1 and seal.serial_number in renewed.revoked
    assert renewed.next_update - renewed.this_update == timedelta(days=2)
    state = json.loads((tmp_path / "ca" / "revocations.json").read_text(encoding="utf-8"))
    assert state["revoked"][0]["subject"] == "存管平台电子签章"
    assert [item.serial for item in revocations(tmp_path)] == [seal.serial_number]


def test_keys_init_upgrades_a_self_signed_seal_for_the_same_key_and_keeps_the_old_one(tmp_path: Path) -> None:
    key = generate_sm2_private_key_pem()
    (tmp_path / "platform.key.pem").write_bytes(key)
    old = make_self_signed_certificate(key, "存管平台电子签章", "Cunguan", valid_from=START)
    (tmp_path / "platform.cert.pem").write_bytes(old)
    ensure_keys(tmp_path, START)
    new = load_certificate((tmp_path / "platform.cert.pem").read_bytes())
    assert new.issuer == load_ca(tmp_path).certificate.subject
    assert pem.armor("PUBLIC KEY", new.public_key.dump()) == sm2_public_key_pem(key), "the same platform key"
    assert legacy_platform_certificates(tmp_path) == [old]
    assert ensure_platform_seal(tmp_path, key) is None, "a CA-issued seal stays"


def test_a_bank_seal_needs_proof_of_possession_and_carries_the_banks_identity(tmp_path: Path) -> None:
    ensure_root(tmp_path, START)
    bank_key = generate_sm2_private_key_pem()
    request = make_self_signed_certificate(bank_key, "银行签章", "bank", valid_from=START)
    issued = load_certificate(issue_bank_seal(tmp_path, request, ORG, valid_from=START))
    assert issued.subject.native["common_name"] == "测试运营有限公司电子签章"
    assert pem.armor("PUBLIC KEY", issued.public_key.dump()) == sm2_public_key_pem(bank_key)
    tampered = x509.Certificate.load(pem.unarmor(request)[2])
    forged = x509.Certificate(
        {
            "tbs_certificate": tampered["tbs_certificate"],
            "signature_algorithm": tampered["signature_algorithm"],
            "signature_value": x509.Certificate.load(pem.unarmor(_other_request())[2])["signature_value"].native,
        }
    )
    with pytest.raises(ValidationError) as refused:
        issue_bank_seal(tmp_path, pem.armor("CERTIFICATE", forged.dump()), ORG)
    assert refused.value.code == "NO_PROOF_OF_POSSESSION"
    from_public_key = load_certificate(issue_bank_seal(tmp_path, sm2_public_key_pem(bank_key), ORG))
    assert from_public_key.public_key.dump() == issued.public_key.dump()


def _other_request() -> bytes:
    return make_self_signed_certificate(generate_sm2_private_key_pem(), "x", "y", valid_from=START)


def test_the_tsa_gets_a_timestamping_certificate_it_can_install(tmp_path: Path) -> None:
    from app.tsa.identity import ensure_tsa_identity, install_certificate

    keys, tsa = tmp_path / "keys", tmp_path / "tsa"
    ensure_keys(keys, START)
    request = ensure_tsa_identity(tsa).certificate_pem  # self-signed: its signature proves the key
    issued = issue_tsa_certificate(keys, request, valid_from=START)
    certificate = load_certificate(issued)
    assert certificate.subject.native["common_name"] == "存管平台时间戳服务"
    assert certificate.subject.native["serial_number"] == "91110000MA01000004", "the operator's USCC"
    trust = TrustStore((load_ca(keys).certificate,))
    assert validate_path(certificate, [], trust, at=[SIGNED_AT], purpose="timestamping").valid
    install_certificate(tsa, issued, root_certificate_path(keys).read_bytes())
    assert ensure_tsa_identity(tsa).certificate_pem == issued
