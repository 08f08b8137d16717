"""The platform CA in the instance key folder (`CUNGUAN_KEYS_DIR`): its root, what it issued, what it revoked.

    ca/root.key.pem       the root's SM2 private key (0600; offline in production, see docs/deploy.md)
    ca/root.cert.pem      the self-signed root certificate: the trust anchor verifiers are given
    ca/issued/SERIAL.pem  a copy of every certificate issued through `issue_and_record` (SERIAL: upper-case hex)
    ca/revocations.json   {"crl_number": n, "revoked": [{"serial", "revoked_at", "reason", "subject"}]}
    ca/crl.pem            the latest CRL (written by `revoke` and `write_crl`; `flask ca crl` renews it)

Files, not a table: the root key lives here anyway, both databases see the same thing, and it survives
restarts. Writes take an exclusive lock (ca/.lock) and replace files atomically. No Flask.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import x509

from app.crypto.openssl_provider import generate_sm2_private_key_pem
from app.pki.certificates import (
    CertificateAuthority,
    Usage,
    certificate_pem,
    issue_certificate,
    load_certificate,
    make_root_ca,
    serial_hex,
)
from app.pki.chain import TrustStore
from app.pki.crl import Revocation, build_crl
from app.pki.names import display_name, plain_subject
from app.platform.errors import ConfigError, ValidationError

ROOT_COMMON_NAME = "存管平台根证书"
ROOT_ORGANIZATION = "存管平台"
ROOT_VALID_DAYS = 20 * 365
CRL_VALID_DAYS = 7
CLOCK_SKEW = timedelta(minutes=5)
_PRIVATE = 0o600


def ca_folder(keys_dir: Path) -> Path:
    return Path(keys_dir) / "ca"


def root_certificate_path(keys_dir: Path) -> Path:
    return ca_folder(keys_dir) / "root.cert.pem"


def crl_path(keys_dir: Path) -> Path:
    return ca_folder(keys_dir) / "crl.pem"


def write_atomic(path: Path, content: bytes, mode: int = 0o644) -> None:
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    temporary.replace(path)


@contextmanager
def _locked(keys_dir: Path) -> Iterator[Path]:
    folder = ca_folder(keys_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_root(keys_dir: Path, valid_from: datetime | None = None) -> CertificateAuthority:
    """The root CA, created when missing (valid from `valid_from`, default now less five minutes, for 20 years);
    an existing root is never replaced. Also writes the first (empty) CRL."""
    with _locked(keys_dir) as folder:
        key_path, certificate_path = folder / "root.key.pem", folder / "root.cert.pem"
        if not key_path.exists():
            write_atomic(key_path, generate_sm2_private_key_pem(), _PRIVATE)
        if not certificate_path.exists():
            start = (valid_from or datetime.now(UTC) - CLOCK_SKEW).astimezone(UTC).replace(microsecond=0)
            root = make_root_ca(
                key_path.read_bytes(),
                plain_subject(ROOT_COMMON_NAME, ROOT_ORGANIZATION),
                valid_from=start,
                valid_until=start + timedelta(days=ROOT_VALID_DAYS),
            )
            write_atomic(certificate_path, root.certificate_pem)
    if not crl_path(keys_dir).exists():
        write_crl(keys_dir)
    return load_ca(keys_dir)


def load_ca(keys_dir: Path) -> CertificateAuthority:
    folder = ca_folder(keys_dir)
    try:
        return CertificateAuthority((folder / "root.key.pem").read_bytes(), (folder / "root.cert.pem").read_bytes())
    except FileNotFoundError as error:
        raise ConfigError(
            f"根证书或其私钥缺失：{folder}（请运行 flask keys init）", code="CA_MISSING", details={"path": str(folder)}
        ) from error


def record_issued(keys_dir: Path, issued_pem: bytes) -> Path:
    """Keep a copy of an issued certificate under its serial (what `revoke` looks up)."""
    certificate = load_certificate(issued_pem)
    folder = ca_folder(keys_dir) / "issued"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{serial_hex(certificate)}.pem"
    write_atomic(path, issued_pem)
    return path


def issue_and_record(
    keys_dir: Path,
    public_key_pem: bytes,
    subject: x509.Name,
    *,
    usage: Usage,
    valid_from: datetime,
    valid_until: datetime,
) -> bytes:
    """`issue_certificate` with the platform's root, the result recorded (so that it can be revoked)."""
    issued = issue_certificate(
        load_ca(keys_dir), public_key_pem, subject, usage=usage, valid_from=valid_from, valid_until=valid_until
    )
    record_issued(keys_dir, issued)
    return issued


def issued_certificate(keys_dir: Path, serial: str) -> x509.Certificate | None:
    path = ca_folder(keys_dir) / "issued" / f"{normalise_serial(serial)}.pem"
    return load_certificate(path.read_bytes()) if path.is_file() else None


def normalise_serial(serial: str) -> str:
    """Upper-case hex of even length, as OpenSSL prints serials ("0x1a2b", "1A:2B" and "1a2b" alike)."""
    text = serial.strip().upper().removeprefix("0X").replace(":", "")
    if not text or any(char not in "0123456789ABCDEF" for char in text):
        raise ValidationError("证书序列号应为十六进制（与 openssl x509 -serial 所示相同）", code="INVALID_SERIAL")
    text = text.lstrip("0") or "0"
    return text if len(text) % 2 == 0 else "0" + text


def _state(folder: Path) -> dict[str, object]:
    path = folder / "revocations.json"
    if not path.is_file():
        return {"crl_number": 0, "revoked": []}
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def revocations(keys_dir: Path) -> list[Revocation]:
    state = _state(ca_folder(keys_dir))
    return [
        Revocation(int(item["serial"], 16), datetime.fromisoformat(item["revoked_at"]), item["reason"])
        for item in state["revoked"]  # type: ignore[attr-defined]
    ]


def revoke(keys_dir: Path, serial: str, reason: str, *, at: datetime | None = None) -> Revocation:
    """Revoke a certificate the platform CA issued (by its hex serial) and write a new CRL at once. An unknown
    serial, an already revoked one or an unknown reason is a ValidationError."""
    wanted = normalise_serial(serial)
    certificate = issued_certificate(keys_dir, wanted)
    if certificate is None:
        raise ValidationError(f"平台 CA 没有签发过序列号为 {wanted} 的证书", code="UNKNOWN_SERIAL")
    moment = (at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    revocation = Revocation(certificate.serial_number, moment, reason)
    with _locked(keys_dir) as folder:
        state = _state(folder)
        revoked: list[dict[str, str]] = state["revoked"]  # type: ignore[assignment]
        if any(normalise_serial(item["serial"]) == wanted for item in revoked):
            raise ValidationError(f"序列号为 {wanted} 的证书已被吊销", code="ALREADY_REVOKED")
        revoked.append(
            {
                "serial": wanted,
                "revoked_at": moment.isoformat(),
                "reason": reason,
                "subject": display_name(certificate.subject),
            }
        )
        write_atomic(folder / "revocations.json", json.dumps(state, ensure_ascii=False, indent=1).encode())
    write_crl(keys_dir, now=moment)
    return revocation


def write_crl(keys_dir: Path, *, now: datetime | None = None, days: int = CRL_VALID_DAYS) -> Path:
    """A new CRL (next cRLNumber, thisUpdate now, nextUpdate in `days`) in ca/crl.pem."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    ca = load_ca(keys_dir)
    with _locked(keys_dir) as folder:
        state = _state(folder)
        number = int(state["crl_number"]) + 1  # type: ignore[call-overload]
        state["crl_number"] = number
        listed = revocations(keys_dir)
        crl = build_crl(ca, listed, this_update=moment, next_update=moment + timedelta(days=days), number=number)
        write_atomic(folder / "revocations.json", json.dumps(state, ensure_ascii=False, indent=1).encode())
        write_atomic(folder / "crl.pem", crl)
    return folder / "crl.pem"


def trust_store(keys_dir: Path, pinned: list[bytes] | None = None) -> TrustStore:
    """The root (when there is one) and `pinned` certificates as anchors, with the current CRL."""
    anchors = list(pinned or [])
    root = root_certificate_path(keys_dir)
    if root.is_file():
        anchors.insert(0, root.read_bytes())
    crl = crl_path(keys_dir)
    return TrustStore.of(anchors, [crl.read_bytes()] if crl.is_file() else [])


def root_pem(keys_dir: Path) -> bytes:
    return certificate_pem(load_ca(keys_dir).certificate)
