"""SM2 keys and the platform's seal certificate on disk (created once, never overwritten)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import pem, x509

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_sign
from app.crypto.openssl_provider import generate_sm2_private_key_pem, sm2_public_key_pem

__all__ = ["ensure_keys", "generate_sm2_private_key_pem", "make_self_signed_certificate", "public_key_pem_from_private"]


def public_key_pem_from_private(private_key_pem: bytes) -> bytes:
    return sm2_public_key_pem(private_key_pem)


def make_self_signed_certificate(
    private_key_pem: bytes, common_name: str, organization: str, valid_days: int = 3650
) -> bytes:
    """An X.509 v3 certificate for the key, signed by itself with SM2-with-SM3."""
    public_info = asn1_keys.PublicKeyInfo.load(pem.unarmor(public_key_pem_from_private(private_key_pem))[2])
    name = x509.Name.build({"country_name": "CN", "organization_name": organization, "common_name": common_name})
    now = datetime.now(UTC).replace(microsecond=0)
    algorithm = {"algorithm": sm_oids.SM2_WITH_SM3_NAME}
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": secrets.randbits(63),
            "signature": algorithm,
            "issuer": name,
            "validity": {
                "not_before": x509.Time(name="utc_time", value=now - timedelta(minutes=5)),
                "not_after": x509.Time(name="general_time", value=now + timedelta(days=valid_days)),
            },
            "subject": name,
            "subject_public_key_info": public_info,
            "extensions": [
                {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": False}},
                {
                    "extn_id": "key_usage",
                    "critical": True,
                    "extn_value": {"digital_signature", "non_repudiation"},
                },
            ],
        }
    )
    signature = sm2_sign(private_key_pem, tbs.dump())
    certificate = x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": algorithm, "signature_value": signature}
    )
    return pem.armor("CERTIFICATE", certificate.dump())


def _write_private(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    path.chmod(0o600)


def ensure_keys(keys_dir: Path, bank_codes: Iterable[str]) -> None:
    """Create what is missing: platform key, public key and seal certificate, bank key pairs, PII key."""
    keys_dir = Path(keys_dir)
    (keys_dir / "banks").mkdir(parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    platform_key = keys_dir / "platform.key.pem"
    if not platform_key.exists():
        _write_private(platform_key, generate_sm2_private_key_pem())
    key_pem = platform_key.read_bytes()
    if not (keys_dir / "platform.pub.pem").exists():
        (keys_dir / "platform.pub.pem").write_bytes(public_key_pem_from_private(key_pem))
    if not (keys_dir / "platform.cert.pem").exists():
        (keys_dir / "platform.cert.pem").write_bytes(
            make_self_signed_certificate(key_pem, "存管平台电子签章", "Cunguan")
        )
    for code in bank_codes:
        bank_key = keys_dir / "banks" / f"{code}.key.pem"
        if not bank_key.exists():
            _write_private(bank_key, generate_sm2_private_key_pem())
        bank_public = keys_dir / "banks" / f"{code}.pub.pem"
        if not bank_public.exists():
            bank_public.write_bytes(public_key_pem_from_private(bank_key.read_bytes()))
    pii_key = keys_dir / "pii.key"
    if not pii_key.exists():
        _write_private(pii_key, secrets.token_hex(16).encode())
