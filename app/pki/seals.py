"""The certificates the platform CA issues to organisations: the platform's own seal (`platform.cert.pem`,
upgraded in place from a self-signed one) and the banks' seals (the bank keeps its key; we certify its public
key). No Flask."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import pem

from app.crypto.openssl_provider import sm2_public_key_pem
from app.pki.certificates import Usage, is_self_issued, load_certificate, serial_hex
from app.pki.chain import public_key_pem, signed_by
from app.pki.names import Organization, organization_subject
from app.pki.store import CLOCK_SKEW, issue_and_record, load_ca
from app.platform.errors import ValidationError

SEAL_COMMON_NAME = "存管平台电子签章"
SEAL_VALID_DAYS = 3650
TSA_COMMON_NAME = "存管平台时间戳服务"
TSA_VALID_DAYS = 5 * 365
# the demo operator; production sets CUNGUAN_PLATFORM_LEGAL_NAME and CUNGUAN_PLATFORM_USCC before `flask keys init`
DEMO_PLATFORM = Organization("存管平台演示运营有限公司", "91110000MA01000004")


def platform_identity(environ: Mapping[str, str] = os.environ) -> Organization:
    name, uscc = environ.get("CUNGUAN_PLATFORM_LEGAL_NAME"), environ.get("CUNGUAN_PLATFORM_USCC")
    if not name and not uscc:
        return DEMO_PLATFORM
    return Organization(name or DEMO_PLATFORM.legal_name, uscc or "")


def _validity(keys_dir: Path, valid_from: datetime | None, days: int) -> tuple[datetime, datetime]:
    """From `valid_from` (default now less five minutes) for `days`, cut at the root's end."""
    root = load_ca(keys_dir).certificate
    start = (valid_from or datetime.now(UTC) - CLOCK_SKEW).astimezone(UTC).replace(microsecond=0)
    start = max(start, root.not_valid_before)
    return start, min(start + timedelta(days=days), root.not_valid_after)


def ensure_platform_seal(
    keys_dir: Path,
    platform_key_pem: bytes,
    identity: Organization | None = None,
    valid_from: datetime | None = None,
) -> Path | None:
    """`platform.cert.pem` issued by the root for the platform's key (legal name and USCC in the subject). A
    missing certificate is issued; a self-signed one (an install from before the CA) is moved to
    legacy/platform-SERIAL.cert.pem - still trusted, so agreements signed with it keep verifying - and replaced,
    for the same key. Returns the legacy path when it upgraded."""
    path = Path(keys_dir) / "platform.cert.pem"
    legacy = None
    if path.exists():
        current = load_certificate(path.read_bytes())
        if not is_self_issued(current):
            return None
        legacy_folder = Path(keys_dir) / "legacy"
        legacy_folder.mkdir(mode=0o700, exist_ok=True)
        legacy = legacy_folder / f"platform-{serial_hex(current)}.cert.pem"
        legacy.write_bytes(path.read_bytes())
    start, end = _validity(keys_dir, valid_from, SEAL_VALID_DAYS)
    subject = organization_subject(identity or platform_identity(), SEAL_COMMON_NAME)
    issued = issue_and_record(
        keys_dir, sm2_public_key_pem(platform_key_pem), subject, usage=Usage.SEAL, valid_from=start, valid_until=end
    )
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(issued)
    temporary.replace(path)
    return legacy


def legacy_platform_certificates(keys_dir: Path) -> list[bytes]:
    """The self-signed seal certificates of before the CA (agreements signed then still verify)."""
    folder = Path(keys_dir) / "legacy"
    return [path.read_bytes() for path in sorted(folder.glob("platform-*.cert.pem"))] if folder.is_dir() else []


def bank_seal_subject_name(legal_name: str) -> str:
    return f"{legal_name}电子签章"


def requested_public_key(request_pem: bytes) -> bytes:
    """The SM2 public key (PEM) a request names: a public key PEM, or a certificate its holder signed itself with
    that key (its signature proves the holder has the key; ValidationError otherwise)."""
    if pem.detect(request_pem) and pem.unarmor(request_pem)[0] == "CERTIFICATE":
        request = load_certificate(request_pem)
        if not signed_by(request, request):
            raise ValidationError("证书请求未用其私钥签名，无法证明持有私钥", code="NO_PROOF_OF_POSSESSION")
        return public_key_pem(request)
    return request_pem


def issue_bank_seal(
    keys_dir: Path,
    request_pem: bytes,
    organization: Organization,
    *,
    valid_from: datetime | None = None,
    valid_days: int = SEAL_VALID_DAYS,
    common_name: str | None = None,
) -> bytes:
    """A seal certificate for a bank's own key (`requested_public_key`: its public key, or its self-signed seal
    certificate as the request). The subject is `organization`'s, not the request's; its commonName
    `common_name`, default "<legal name>电子签章"."""
    start, end = _validity(keys_dir, valid_from, valid_days)
    subject = organization_subject(organization, common_name or bank_seal_subject_name(organization.legal_name))
    public_key = requested_public_key(request_pem)
    return issue_and_record(keys_dir, public_key, subject, usage=Usage.SEAL, valid_from=start, valid_until=end)


def issue_tsa_certificate(
    keys_dir: Path,
    request_pem: bytes,
    *,
    identity: Organization | None = None,
    valid_from: datetime | None = None,
    valid_days: int = TSA_VALID_DAYS,
) -> bytes:
    """The timestamp authority's certificate for its own key (extendedKeyUsage timeStamping, critical; subject the
    platform operator's legal name and USCC, CN TSA_COMMON_NAME). The TSA installs it with the root as chain."""
    start, end = _validity(keys_dir, valid_from, valid_days)
    subject = organization_subject(identity or platform_identity(), TSA_COMMON_NAME)
    public_key = requested_public_key(request_pem)
    return issue_and_record(keys_dir, public_key, subject, usage=Usage.TSA, valid_from=start, valid_until=end)
