"""SM2 keys and the platform's seal certificate on disk (created once, never overwritten)."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import pem, x509

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_sign
from app.crypto.openssl_provider import generate_sm2_private_key_pem, sm2_public_key_pem
from app.pki.seals import ensure_platform_seal
from app.pki.store import ensure_root
from app.platform.errors import ValidationError
from app.seals.issue import ensure_platform_seal_file

_PRIVATE = 0o600
AUDIT_MAC_KEY_FILE = "audit-mac.key"  # HMAC-SM3 key of the audit log's entries (kept out of the database)

__all__ = [
    "AUDIT_MAC_KEY_FILE",
    "bank_certificate_path",
    "certificate_public_key_pem",
    "ensure_keys",
    "ensure_private_key",
    "generate_sm2_private_key_pem",
    "import_bank_certificate",
    "make_self_signed_certificate",
    "public_key_pem_from_private",
]


def bank_certificate_path(keys_dir: Path, bank_code: str) -> Path:
    """Where a bank's seal certificate (for its signature on agreements) is kept."""
    return Path(keys_dir) / "banks" / f"{bank_code}.cert.pem"


def public_key_pem_from_private(private_key_pem: bytes) -> bytes:
    return sm2_public_key_pem(private_key_pem)


def make_self_signed_certificate(
    private_key_pem: bytes,
    common_name: str,
    organization: str,
    valid_days: int = 3650,
    valid_from: datetime | None = None,
    extended_key_usage: list[str] | None = None,
) -> bytes:
    """An X.509 v3 seal certificate for the key, signed by itself with SM2-with-SM3, valid from `valid_from`
    (default: now, less five minutes of clock skew) for `valid_days`; its key usage is signing only
    (digitalSignature, nonRepudiation), which the PDF verifier requires of a signer; `extended_key_usage`
    (purpose OIDs, e.g. timeStamping for a TSA) is added as a critical extension."""
    public_info = asn1_keys.PublicKeyInfo.load(pem.unarmor(public_key_pem_from_private(private_key_pem))[2])
    name = x509.Name.build({"country_name": "CN", "organization_name": organization, "common_name": common_name})
    start = (valid_from or datetime.now(UTC) - timedelta(minutes=5)).astimezone(UTC).replace(microsecond=0)
    algorithm = {"algorithm": sm_oids.SM2_WITH_SM3_NAME}
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": secrets.randbelow(2**63 - 1) + 1,
            "signature": algorithm,
            "issuer": name,
            "validity": {
                "not_before": _x509_time(start),
                "not_after": _x509_time(start + timedelta(days=valid_days)),
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
                *(
                    [{"extn_id": "extended_key_usage", "critical": True, "extn_value": extended_key_usage}]
                    if extended_key_usage
                    else []
                ),
            ],
        }
    )
    signature = sm2_sign(private_key_pem, tbs.dump())
    certificate = x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": algorithm, "signature_value": signature}
    )
    return pem.armor("CERTIFICATE", certificate.dump())


def _x509_time(moment: datetime) -> x509.Time:
    """UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)."""
    return x509.Time(name="utc_time" if moment.year < 2050 else "general_time", value=moment)


def _write_new(path: Path, content: bytes, mode: int = 0o644) -> None:
    """Create `path` with `mode` from the start; an existing file is left alone."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def ensure_keys(keys_dir: Path, certificate_valid_from: datetime | None = None) -> None:
    """Create what is missing: platform key, public key, the platform CA's root (ca/, app.pki.store) and the seal
    certificate it issues for the platform key, the platform's GB/T 38540 seal for that certificate
    (`platform.seal.der`, app.seals.issue), PII keys, the audit MAC key, and the empty folder for the banks'
    public keys and certificates (`import_bank_certificate`). No bank private key is ever made here: each bank
    keeps its own (the simulator's in its own folder, app.tools.banksim.keys).

    Existing files are never overwritten - except a self-signed seal certificate from before the CA, which is
    kept in legacy/ and replaced by a CA-issued one for the same key (app.pki.seals.ensure_platform_seal);
    private files are created 0600 and the folders are 0700. A new root and seal certificate are valid from
    `certificate_valid_from` (default now; simulations whose clock starts in the past give their start, since
    signatures are checked against the certificate's validity).
    """
    keys_dir = Path(keys_dir)
    for folder in (keys_dir, keys_dir / "banks"):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
    platform_key = ensure_private_key(keys_dir / "platform.key.pem")
    if not (keys_dir / "platform.pub.pem").exists():
        _write_new(keys_dir / "platform.pub.pem", public_key_pem_from_private(platform_key))
    ensure_root(keys_dir, certificate_valid_from)
    ensure_platform_seal(keys_dir, platform_key, valid_from=certificate_valid_from)
    ensure_platform_seal_file(keys_dir)
    if not (keys_dir / "pii.key").exists():
        _write_new(keys_dir / "pii.key", secrets.token_hex(16).encode(), _PRIVATE)
    if not (keys_dir / "pii-index.key").exists():  # keys the blind index (HMAC-SM3), apart from pii*.key
        _write_new(keys_dir / "pii-index.key", secrets.token_hex(32).encode(), _PRIVATE)
    if not (keys_dir / AUDIT_MAC_KEY_FILE).exists():
        _write_new(keys_dir / AUDIT_MAC_KEY_FILE, secrets.token_hex(32).encode(), _PRIVATE)


def certificate_public_key_pem(certificate_pem: bytes) -> bytes:
    """The SM2 public key a PEM certificate certifies (ValidationError if it is no SM2 certificate)."""
    try:
        _, _, der = pem.unarmor(certificate_pem)
        certificate = x509.Certificate.load(der)
        public_key = certificate.public_key
        algorithm = public_key["algorithm"]
        curve = algorithm["parameters"].chosen.native if algorithm["algorithm"].native == "ec" else None
    except (ValueError, TypeError, KeyError) as error:
        raise ValidationError("无法解析银行证书", code="INVALID_CERTIFICATE") from error
    if curve not in (sm_oids.SM2_CURVE_OID, sm_oids.SM2_CURVE_NAME):
        raise ValidationError("银行证书不是 SM2 证书", code="INVALID_CERTIFICATE", details={"curve": curve})
    return pem.armor("PUBLIC KEY", public_key.dump())


def import_bank_certificate(keys_dir: Path, bank_code: str, certificate_pem: bytes) -> Path:
    """Keep a bank's seal certificate and the public key it certifies (banks/CODE.cert.pem, banks/CODE.pub.pem):
    the platform verifies the bank's callbacks, statements and agreement signatures with them. A new
    certificate replaces the old one (the bank's key rotation). Returns the certificate's path."""
    public_key = certificate_public_key_pem(certificate_pem)
    folder = Path(keys_dir) / "banks"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path, content in (
        (folder / f"{bank_code}.pub.pem", public_key),
        (bank_certificate_path(keys_dir, bank_code), certificate_pem),
    ):
        temporary = path.with_name(path.name + ".new")
        temporary.unlink(missing_ok=True)
        _write_new(temporary, content)
        temporary.replace(path)
    return bank_certificate_path(keys_dir, bank_code)


def ensure_private_key(path: Path) -> bytes:
    """The SM2 private key at `path`, created (0600) if missing."""
    if not path.exists():
        _write_new(path, generate_sm2_private_key_pem(), _PRIVATE)
    return path.read_bytes()
