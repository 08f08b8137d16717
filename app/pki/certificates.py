"""Issue X.509 v3 certificates with SM2-with-SM3: the platform's root CA and what it certifies.

    root = make_root_ca(root_key_pem, plain_subject("存管平台根证书"), valid_from=..., valid_until=...)
    pem = issue_certificate(root, public_key_pem, organization_subject(org, "…电子签章"),
                            usage=Usage.SEAL, valid_from=..., valid_until=...)

Usages (key usage, extended key usage):
- ``Usage.CA``: CA:TRUE, keyCertSign + cRLSign (the root; an intermediate if ever wanted).
- ``Usage.SEAL``: an organisation's seal (platform, bank): digitalSignature + nonRepudiation.
- ``Usage.PERSONAL``: a party's signing certificate: digitalSignature + nonRepudiation.
- ``Usage.TSA``: a timestamp authority: digitalSignature + nonRepudiation, extendedKeyUsage timeStamping
  (critical, the only purpose: RFC 3161 §2.3).
Every certificate carries subject and authority key identifiers (SHA-1 of the key, RFC 5280 §4.2.1.2), so
chains are built the way OpenSSL builds them. Pure: no Flask, no files.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from asn1crypto import keys as asn1_keys
from asn1crypto import pem, x509

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_sign
from app.crypto.openssl_provider import sm2_public_key_pem
from app.platform.errors import ValidationError

_ALGORITHM = {"algorithm": sm_oids.SM2_WITH_SM3_NAME}


class Usage(Enum):
    CA = "ca"
    SEAL = "seal"
    PERSONAL = "personal"
    TSA = "tsa"


_KEY_USAGE: dict[Usage, set[str]] = {
    Usage.CA: {"key_cert_sign", "crl_sign"},
    Usage.SEAL: {"digital_signature", "non_repudiation"},
    Usage.PERSONAL: {"digital_signature", "non_repudiation"},
    Usage.TSA: {"digital_signature", "non_repudiation"},
}


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA that can issue: its private key and its own certificate (both PEM)."""

    private_key_pem: bytes
    certificate_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return load_certificate(self.certificate_pem)


def load_certificate(certificate: bytes) -> x509.Certificate:
    """A certificate from PEM or DER (ValidationError when it is neither)."""
    try:
        der = pem.unarmor(certificate)[2] if pem.detect(certificate) else certificate
        loaded = x509.Certificate.load(der)
        _ = loaded.subject, loaded.serial_number  # parse now, not at first use
    except (ValueError, TypeError, KeyError) as error:
        raise ValidationError("无法解析证书", code="INVALID_CERTIFICATE") from error
    return loaded


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return pem.armor("CERTIFICATE", certificate.dump())


def serial_hex(certificate: x509.Certificate) -> str:
    """The serial number as OpenSSL prints it (upper-case hex, even length)."""
    text = f"{certificate.serial_number:X}"
    return text if len(text) % 2 == 0 else "0" + text


def _public_key_info(public_key_pem: bytes) -> asn1_keys.PublicKeyInfo:
    try:
        info = asn1_keys.PublicKeyInfo.load(pem.unarmor(public_key_pem)[2])
        curve = info["algorithm"]["parameters"].chosen.native if info["algorithm"]["algorithm"].native == "ec" else None
    except (ValueError, TypeError, KeyError) as error:
        raise ValidationError("无法解析待签发的公钥", code="INVALID_PUBLIC_KEY") from error
    if curve not in (sm_oids.SM2_CURVE_OID, sm_oids.SM2_CURVE_NAME):
        raise ValidationError("待签发的公钥不是 SM2 公钥", code="INVALID_PUBLIC_KEY", details={"curve": curve})
    return info


def key_identifier(info: asn1_keys.PublicKeyInfo) -> bytes:
    """RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits."""
    return hashlib.sha1(info["public_key"].contents[1:]).digest()


def x509_time(moment: datetime) -> x509.Time:
    """UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)."""
    moment = moment.astimezone(UTC).replace(microsecond=0)
    return x509.Time(name="utc_time" if moment.year < 2050 else "general_time", value=moment)


def _sign(private_key_pem: bytes, tbs: x509.TbsCertificate) -> bytes:
    signature = sm2_sign(private_key_pem, tbs.dump())
    certificate = x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": _ALGORITHM, "signature_value": signature}
    )
    return certificate_pem(certificate)


def _extensions(
    usage: Usage, subject_key: bytes, authority_key: bytes, path_length: int | None
) -> list[dict[str, object]]:
    constraints: dict[str, object] = {"ca": usage is Usage.CA}
    if usage is Usage.CA and path_length is not None:
        constraints["path_len_constraint"] = path_length
    extensions: list[dict[str, object]] = [
        {"extn_id": "basic_constraints", "critical": True, "extn_value": constraints},
        {"extn_id": "key_usage", "critical": True, "extn_value": _KEY_USAGE[usage]},
        {"extn_id": "key_identifier", "critical": False, "extn_value": subject_key},
        {"extn_id": "authority_key_identifier", "critical": False, "extn_value": {"key_identifier": authority_key}},
    ]
    if usage is Usage.TSA:
        extensions.append({"extn_id": "extended_key_usage", "critical": True, "extn_value": ["time_stamping"]})
    return extensions


def _check_validity(valid_from: datetime, valid_until: datetime) -> None:
    if valid_from.tzinfo is None or valid_until.tzinfo is None:
        raise ValidationError("证书有效期必须带时区（UTC）", code="INVALID_VALIDITY")
    if valid_until <= valid_from:
        raise ValidationError("证书有效期的结束时间必须晚于开始时间", code="INVALID_VALIDITY")


def make_root_ca(
    private_key_pem: bytes, subject: x509.Name, *, valid_from: datetime, valid_until: datetime
) -> CertificateAuthority:
    """A self-signed root: CA:TRUE (path length 0: it certifies end entities only), keyCertSign + cRLSign."""
    _check_validity(valid_from, valid_until)
    info = _public_key_info(sm2_public_key_pem(private_key_pem))
    identifier = key_identifier(info)
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": _new_serial(),
            "signature": _ALGORITHM,
            "issuer": subject,
            "validity": {"not_before": x509_time(valid_from), "not_after": x509_time(valid_until)},
            "subject": subject,
            "subject_public_key_info": info,
            "extensions": _extensions(Usage.CA, identifier, identifier, 0),
        }
    )
    return CertificateAuthority(private_key_pem, _sign(private_key_pem, tbs))


def issue_certificate(
    ca: CertificateAuthority,
    public_key_pem: bytes,
    subject: x509.Name,
    *,
    usage: Usage,
    valid_from: datetime,
    valid_until: datetime,
    serial: int | None = None,
) -> bytes:
    """A certificate (PEM) for `public_key_pem` (SM2 SubjectPublicKeyInfo PEM), signed by `ca`.

    `subject`: `organization_subject` (seals, TSA), `person_subject` (parties) or `plain_subject`. The validity
    must lie within the CA's (ValidationError otherwise); aware datetimes only. `serial`: default a random
    63-bit number. The caller keeps the result (`app.pki.store.record_issued` for the platform's CA)."""
    _check_validity(valid_from, valid_until)
    issuer = ca.certificate
    if not issuer.ca:
        raise ValidationError("签发者证书不是 CA 证书", code="NOT_A_CA")
    if valid_from < issuer.not_valid_before or valid_until > issuer.not_valid_after:
        raise ValidationError(
            "证书有效期超出 CA 证书的有效期",
            code="INVALID_VALIDITY",
            details={"ca_valid": [issuer.not_valid_before.isoformat(), issuer.not_valid_after.isoformat()]},
        )
    info = _public_key_info(public_key_pem)
    ca_info = _public_key_info(sm2_public_key_pem(ca.private_key_pem))
    if ca_info["public_key"].native != issuer.public_key["public_key"].native:
        raise ValidationError("CA 私钥与 CA 证书不匹配", code="CERT_KEY_MISMATCH")
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial if serial is not None else _new_serial(),
            "signature": _ALGORITHM,
            "issuer": issuer.subject,
            "validity": {"not_before": x509_time(valid_from), "not_after": x509_time(valid_until)},
            "subject": subject,
            "subject_public_key_info": info,
            "extensions": _extensions(usage, key_identifier(info), key_identifier(ca_info), None),
        }
    )
    return _sign(ca.private_key_pem, tbs)


def is_self_issued(certificate: x509.Certificate) -> bool:
    return certificate.subject == certificate.issuer


def _new_serial() -> int:
    return secrets.randbelow(2**63 - 1) + 1
