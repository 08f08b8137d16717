"""The platform CA certifies the TSA (`flask tsa certify`): tokens then verify through the root, the chain goes
with them, and revoking the TSA's certificate (the CA's CRL) makes its timestamps fail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import pem
from click.testing import CliRunner

from app.crypto import sm3
from app.crypto.openssl_provider import generate_sm2_private_key_pem, sm2_public_key_pem
from app.pdf.dss import embedded_trust, validation_data_extension
from app.pdf.sign import sign_pdf, timestamp_document
from app.pdf.verify import verify_pdf_signatures
from app.pki.certificates import Usage, load_certificate, serial_hex
from app.pki.names import plain_subject
from app.pki.store import crl_path, ensure_root, issue_and_record, revoke, root_certificate_path, trust_store
from app.tsa import protocol
from app.tsa.authority import open_authority
from app.tsa.certify import certify_tsa
from app.tsa.cli import tsa_cli
from app.tsa.identity import ensure_tsa_identity
from app.tsa.tokens import check_token
from tests.pdf_samples import text_pdf

STAMPED = b"a signature value"


@pytest.fixture
def ca_keys(tmp_path: Path) -> Path:
    ensure_root(tmp_path / "keys")
    return tmp_path / "keys"


def _token(folder: Path) -> bytes:
    reply = open_authority(folder).respond(protocol.build_request(sm3(STAMPED), nonce=7))
    _, _, token = protocol.read_reply(reply)
    assert token is not None
    return token.dump()


def test_a_certified_tsa_is_trusted_through_the_root_until_revoked(ca_keys: Path, tmp_path: Path) -> None:
    folder = tmp_path / "tsa"
    self_signed = _token(folder)
    assert "自签名证书" in "".join(check_token(self_signed, STAMPED, trust_store(ca_keys)).errors)

    result = CliRunner().invoke(tsa_cli, ["certify", "--keys-dir", str(folder), "--ca-keys-dir", str(ca_keys)])
    assert result.exit_code == 0 and "时间戳服务证书已签发" in result.output, result.output
    identity = ensure_tsa_identity(folder)
    assert identity.certificate.issuer == identity.chain[0].subject and identity.chain[0].ca
    assert identity.certificate.extended_key_usage_value.native == ["time_stamping"]
    token = _token(folder)
    check = check_token(token, STAMPED, trust_store(ca_keys))
    assert check.valid and check.trusted, check.errors
    assert certify_tsa(ca_keys, folder) is None, "already certified by this root: `make setup` may run again"
    renewed = certify_tsa(ca_keys, folder, renew=True)
    assert renewed is not None and ensure_tsa_identity(folder).certificate_pem == renewed
    identity = ensure_tsa_identity(folder)
    token = _token(folder)

    revoke(ca_keys, serial_hex(identity.certificate), "key_compromise")
    revoked = check_token(token, STAMPED, trust_store(ca_keys))
    assert not revoked.valid and any("吊销" in error and "密钥泄露" in error for error in revoked.errors)
    assert check_token(token, STAMPED, trust_store(tmp_path / "another-ca")).trusted is False


def test_offline_the_files_own_crl_shows_a_revoked_seal(ca_keys: Path, tmp_path: Path) -> None:
    """Years later, with only the root: the CRL the document timestamp's update embedded says the seal was revoked."""
    certify_tsa(ca_keys, tmp_path / "tsa")
    authority = open_authority(tmp_path / "tsa")

    def stamper(digest: bytes) -> bytes:
        _, _, token = protocol.read_reply(authority.respond(protocol.build_request(digest)))
        assert token is not None
        return token.dump()

    key = generate_sm2_private_key_pem()
    now = datetime.now(UTC)
    subject = plain_subject("某签章")
    seal = issue_and_record(
        ca_keys,
        sm2_public_key_pem(key),
        subject,
        usage=Usage.SEAL,
        valid_from=now - timedelta(minutes=1),
        valid_until=now + timedelta(days=30),
    )
    signed = sign_pdf(text_pdf(b"x"), key, seal, signer_name="x", reason="x", location="x", signing_time=now)
    root = root_certificate_path(ca_keys).read_bytes()

    def closed() -> bytes:
        certificates, crls = [pem.unarmor(root)[2]], [crl_path(ca_keys).read_bytes()]
        return timestamp_document(signed, stamper, validation_data_extension(certificates, crls))

    good = closed()
    assert all(report.valid for report in verify_pdf_signatures(good, embedded_trust(good, [root]))), "not revoked"
    revoke(ca_keys, serial_hex(load_certificate(seal)), "key_compromise")
    bad = closed()
    signature, document = verify_pdf_signatures(bad, embedded_trust(bad, [root]))
    assert document.valid and not signature.valid and signature.revoked
    assert any("密钥泄露" in error for error in signature.errors)
