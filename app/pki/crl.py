"""X.509 v2 certificate revocation lists signed with SM2-with-SM3 (RFC 5280 §5), and reading them back.

    pem = build_crl(ca, [Revocation(serial, revoked_at, "key_compromise")], this_update=now,
                    next_update=now + timedelta(days=7), number=3)
    revoked = read_crl(pem, issuer_certificate)   # {serial: Revocation}; ValidationError if not the issuer's

Reasons are RFC 5280's CRLReason names as asn1crypto spells them (`REASONS`, with their Chinese labels).
Pure: no Flask, no files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import crl, pem, x509

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_sign, sm2_verify
from app.pki.certificates import CertificateAuthority, x509_time
from app.platform.errors import ValidationError

REASONS: dict[str, str] = {
    "unspecified": "未说明",
    "key_compromise": "密钥泄露",
    "ca_compromise": "CA 密钥泄露",
    "affiliation_changed": "隶属关系变更",
    "superseded": "已被替代",
    "cessation_of_operation": "停止使用",
    "certificate_hold": "暂停使用",
    "privilege_withdrawn": "权限撤销",
}
_ALGORITHM = {"algorithm": sm_oids.SM2_WITH_SM3_NAME}


@dataclass(frozen=True)
class Revocation:
    serial: int
    revoked_at: datetime
    reason: str = "unspecified"

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValidationError(
                "未知的吊销原因", code="INVALID_REASON", details={"reason": self.reason, "known": sorted(REASONS)}
            )

    @property
    def reason_label(self) -> str:
        return REASONS[self.reason]


@dataclass(frozen=True)
class RevocationList:
    """A CRL read and checked against its issuer."""

    issuer: x509.Name
    this_update: datetime
    next_update: datetime | None
    number: int | None
    revoked: dict[int, Revocation]


def build_crl(
    ca: CertificateAuthority,
    revocations: list[Revocation],
    *,
    this_update: datetime,
    next_update: datetime,
    number: int,
) -> bytes:
    """The CA's CRL (PEM): v2, nextUpdate, cRLNumber, the CA's key identifier; one entry per revocation with
    its reason code (none for "unspecified", as RFC 5280 §5.3.1 asks)."""
    issuer = ca.certificate
    entries = []
    for revocation in sorted(revocations, key=lambda item: (item.revoked_at, item.serial)):
        entry: dict[str, object] = {
            "user_certificate": revocation.serial,
            "revocation_date": x509_time(revocation.revoked_at),
        }
        if revocation.reason != "unspecified":
            entry["crl_entry_extensions"] = [{"extn_id": "crl_reason", "extn_value": revocation.reason}]
        entries.append(entry)
    tbs: dict[str, object] = {
        "version": "v2",
        "signature": _ALGORITHM,
        "issuer": issuer.subject,
        "this_update": x509_time(this_update),
        "next_update": x509_time(next_update),
        "crl_extensions": [
            {"extn_id": "crl_number", "extn_value": number},
            {"extn_id": "authority_key_identifier", "extn_value": {"key_identifier": issuer.key_identifier}},
        ],
    }
    if entries:
        tbs["revoked_certificates"] = entries
    tbs_list = crl.TbsCertList(tbs)
    signature = sm2_sign(ca.private_key_pem, tbs_list.dump())
    certificate_list = crl.CertificateList(
        {"tbs_cert_list": tbs_list, "signature_algorithm": _ALGORITHM, "signature": signature}
    )
    return pem.armor("X509 CRL", certificate_list.dump())


def read_crl(crl_bytes: bytes, issuer: x509.Certificate) -> RevocationList:
    """The CRL (PEM or DER) when `issuer` issued it: same name, SM2-with-SM3 signature that verifies with its
    key; ValidationError otherwise (a CRL nobody can vouch for revokes nothing and clears nothing)."""
    try:
        der = pem.unarmor(crl_bytes)[2] if pem.detect(crl_bytes) else crl_bytes
        certificate_list = crl.CertificateList.load(der)
        tbs = certificate_list["tbs_cert_list"]
        algorithm = certificate_list["signature_algorithm"]["algorithm"].dotted
        issuer_name = tbs["issuer"]
        _ = tbs.native
    except (ValueError, TypeError, KeyError) as error:
        raise ValidationError("无法解析证书吊销列表", code="INVALID_CRL") from error
    if issuer_name != issuer.subject:
        raise ValidationError("证书吊销列表不是该 CA 签发的", code="CRL_ISSUER_MISMATCH")
    issuer_key = pem.armor("PUBLIC KEY", issuer.public_key.dump())
    if algorithm != sm_oids.SM2_WITH_SM3_OID or not sm2_verify(
        issuer_key, tbs.dump(), certificate_list["signature"].native
    ):
        raise ValidationError("证书吊销列表的签名无效", code="CRL_SIGNATURE_INVALID")
    revoked: dict[int, Revocation] = {}
    for entry in tbs["revoked_certificates"] or []:
        reason = entry.crl_reason_value.native if entry.crl_reason_value is not None else "unspecified"
        when = entry["revocation_date"].native.astimezone(UTC)
        serial = entry["user_certificate"].native
        revoked[serial] = Revocation(serial, when, reason if reason in REASONS else "unspecified")
    next_update = tbs["next_update"].native
    return RevocationList(
        issuer=issuer_name,
        this_update=tbs["this_update"].native.astimezone(UTC),
        next_update=next_update.astimezone(UTC) if next_update is not None else None,
        number=certificate_list.crl_number_value.native if certificate_list.crl_number_value is not None else None,
        revoked=revoked,
    )
