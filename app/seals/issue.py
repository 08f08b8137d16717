"""The seal files beside the certificates: the platform's (`platform.seal.der` in the platform's key folder) and
each bank's (`banks/CODE.seal.der`; the bank keeps its own copy beside its key: the simulator's
`CODE.seal.der`). The platform CA makes them (`app.seals.seal.make_seal`) for the certificates it issued, named
after the holder's legal name (the certificate's organizationName), valid as long as the certificate. No Flask."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from app.pki.certificates import load_certificate
from app.pki.store import load_ca, write_atomic
from app.platform.errors import CunguanError, ValidationError
from app.seals.picture import seal_picture
from app.seals.seal import make_seal, read_seal

PLATFORM_SEAL = "platform.seal.der"


def platform_seal_path(keys_dir: Path) -> Path:
    return Path(keys_dir) / PLATFORM_SEAL


def bank_seal_path(folder: Path, bank_code: str) -> Path:
    """`CODE.seal.der` in `folder`: the platform's `banks/` folder, or the bank's own."""
    return Path(folder) / f"{bank_code}.seal.der"


def legal_name(certificate_pem: bytes) -> str:
    """The holder's legal name: the certificate's organizationName (commonName when it has none)."""
    subject = load_certificate(certificate_pem).subject.native
    return str(subject.get("organization_name") or subject.get("common_name") or "")


def issue_seal(
    keys_dir: Path, certificate_pem: bytes, *, name: str | None = None, now: datetime | None = None
) -> bytes:
    """A seal (DER) made by the platform CA of `keys_dir` for the holder of `certificate_pem`, which that CA must
    have issued; `name` defaults to the holder's legal name."""
    ca = load_ca(keys_dir)
    certificate = load_certificate(certificate_pem)
    if certificate.issuer != ca.certificate.subject:
        raise ValidationError("只能为本平台 CA 签发的证书制作电子印章", code="SEAL_CERTIFICATE_FOREIGN")
    seal_name = name or legal_name(certificate_pem)
    return make_seal(
        ca,
        name=seal_name,
        signer_certificate_pem=certificate_pem,
        picture=seal_picture(seal_name),
        created=now or datetime.now(UTC),
    )


def seal_fits(path: Path, certificate_pem: bytes, keys_dir: Path) -> bool:
    """Whether `path` holds a seal of this CA listing `certificate_pem` (else it is made anew)."""
    if not path.is_file():
        return False
    try:
        seal = read_seal(path.read_bytes())
        certificate = load_certificate(certificate_pem)
    except CunguanError:
        return False
    return seal.maker.dump() == load_ca(keys_dir).certificate.dump() and certificate.dump() in seal.signer_certificates


def write_seal(path: Path, seal_der: bytes) -> Path:
    write_atomic(path, seal_der)
    return path


def ensure_seal(keys_dir: Path, path: Path, certificate_pem: bytes) -> bool:
    """Make the seal at `path` for `certificate_pem` unless the one there fits it; True when it made one."""
    if seal_fits(path, certificate_pem, keys_dir):
        return False
    write_seal(path, issue_seal(keys_dir, certificate_pem))
    return True


def ensure_platform_seal_file(keys_dir: Path) -> bool:
    """The platform's seal for its CA-issued seal certificate (`flask keys init`, `make setup`: an install from
    before seals gets one for its existing key and certificate). False when the one there fits, or when the
    certificate is still self-signed (no CA to make a seal)."""
    certificate = (Path(keys_dir) / "platform.cert.pem").read_bytes()
    if load_certificate(certificate).issuer != load_ca(keys_dir).certificate.subject:
        return False
    return ensure_seal(keys_dir, platform_seal_path(keys_dir), certificate)
