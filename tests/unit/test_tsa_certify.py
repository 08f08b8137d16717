"""The platform CA certifies the TSA (`flask tsa certify`): tokens then verify through the root, the chain goes
with them, and revoking the TSA's certificate (the CA's CRL) makes its timestamps fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from app.crypto import sm3
from app.pki.certificates import serial_hex
from app.pki.store import ensure_root, revoke, trust_store
from app.tsa import protocol
from app.tsa.authority import open_authority
from app.tsa.certify import certify_tsa
from app.tsa.cli import tsa_cli
from app.tsa.identity import ensure_tsa_identity
from app.tsa.tokens import check_token

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
