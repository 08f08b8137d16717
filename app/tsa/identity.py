"""The TSA's own key and certificate, kept in its own folder (never the platform's keys folder):

    tsa.key.pem   SM2 private key (0600)        tsa.cert.pem   its certificate: extendedKeyUsage timeStamping,
    serial        the last serial number issued  issued.jsonl   one line per token issued (serial, time, imprint)

Until the platform CA (`app/pki/`) issues the TSA's certificate, it is self-signed here (SM2-with-SM3, keyUsage
digitalSignature + nonRepudiation, extendedKeyUsage timeStamping, critical, as RFC 3161 §2.3 requires).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import pem, x509

from app.crypto.keys import ensure_private_key, make_self_signed_certificate, public_key_pem_from_private
from app.platform.errors import ValidationError
from app.tsa.protocol import TIME_STAMPING_PURPOSE

TSA_COMMON_NAME = "存管平台时间戳服务"
TSA_ORGANIZATION = "Cunguan"
KEY_FILE = "tsa.key.pem"
CERTIFICATE_FILE = "tsa.cert.pem"
CHAIN_FILE = "tsa.chain.pem"  # the certificates above the TSA's (the platform CA's root), sent with each token
_VALID_DAYS = 3650


@dataclass(frozen=True)
class TsaIdentity:
    private_key_pem: bytes
    certificate_pem: bytes
    chain_pem: bytes = b""  # PEM certificates of the issuers, concatenated (empty for a self-signed certificate)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.Certificate.load(pem.unarmor(self.certificate_pem)[2])

    @property
    def chain(self) -> list[x509.Certificate]:
        if not self.chain_pem.strip():
            return []
        return [x509.Certificate.load(der) for _, _, der in pem.unarmor(self.chain_pem, multiple=True)]


def make_tsa_certificate(private_key_pem: bytes, valid_from: datetime | None = None) -> bytes:
    """A self-signed timestamping certificate for the key (PEM), valid ten years from `valid_from` (default: now,
    less five minutes of clock skew); `flask tsa certify` replaces it by one the platform CA issues."""
    return make_self_signed_certificate(
        private_key_pem,
        TSA_COMMON_NAME,
        TSA_ORGANIZATION,
        valid_days=_VALID_DAYS,
        valid_from=valid_from,
        extended_key_usage=[TIME_STAMPING_PURPOSE],
    )


def ensure_tsa_identity(folder: Path) -> TsaIdentity:
    """The TSA's key and certificate in `folder`, created (key 0600, folder 0700) where missing; an existing
    certificate is kept."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_key = ensure_private_key(folder / KEY_FILE)
    certificate_path = folder / CERTIFICATE_FILE
    if not certificate_path.is_file():
        temporary = certificate_path.with_name(f"{certificate_path.name}.{secrets.token_hex(4)}.new")
        temporary.write_bytes(make_tsa_certificate(private_key))
        try:
            os.link(temporary, certificate_path)  # the first process to get there wins; the others read its file
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    chain_path = folder / CHAIN_FILE
    return TsaIdentity(
        private_key, certificate_path.read_bytes(), chain_path.read_bytes() if chain_path.is_file() else b""
    )


def install_certificate(folder: Path, certificate_pem: bytes, chain_pem: bytes = b"") -> None:
    """Give the TSA in `folder` a certificate issued for its key (and its issuers' certificates, `chain_pem`),
    replacing the self-signed one; the running process reads it when restarted. A certificate for another key or
    without the timeStamping purpose is refused."""
    folder = Path(folder)
    private_key = ensure_private_key(folder / KEY_FILE)
    try:
        certificate = x509.Certificate.load(pem.unarmor(certificate_pem)[2])
        certified = certificate.public_key["public_key"].native
        purposes = certificate.extended_key_usage_value
    except (ValueError, TypeError, KeyError) as error:
        raise ValidationError("无法解析时间戳服务证书", code="INVALID_CERTIFICATE") from error
    own = asn1_keys.PublicKeyInfo.load(pem.unarmor(public_key_pem_from_private(private_key))[2])
    if certified != own["public_key"].native:
        raise ValidationError("证书不是为这个时间戳服务的密钥签发的", code="CERT_KEY_MISMATCH")
    if purposes is None or purposes.native != [TIME_STAMPING_PURPOSE]:
        raise ValidationError("证书的扩展密钥用途不是 timeStamping", code="INVALID_CERTIFICATE")
    for name, content in ((CHAIN_FILE, chain_pem), (CERTIFICATE_FILE, certificate_pem)):
        temporary = folder / f"{name}.{secrets.token_hex(4)}.new"
        temporary.write_bytes(content)
        temporary.replace(folder / name)
