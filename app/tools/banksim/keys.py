"""The simulated banks' own keys, kept in the simulator's folder and nowhere else.

Each bank holds its SM2 private key (CODE.key.pem, 0600) and its seal certificate (CODE.cert.pem): first one
it signed itself, which serves as its certificate request; `certify_simulated_banks` (`flask bank-sim certify`)
has the platform CA issue the real one for the same key, hands it back with the CA's root (platform-root.cert.pem,
carried in the bank's signatures) and imports it into the platform (`flask keys import-bank`). The folder also
holds the platform's public key the banks were given at onboarding (platform.pub.pem), to verify the platform's
requests.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from app.banks.registry import configured_banks
from app.crypto.keys import ensure_keys, ensure_private_key, import_bank_certificate, make_self_signed_certificate
from app.pki.certificates import load_certificate
from app.pki.chain import signed_by
from app.pki.names import Organization, uscc_check_character
from app.pki.seals import issue_bank_seal
from app.pki.store import load_ca
from app.seals.issue import bank_seal_path, ensure_seal, write_seal

BANK_SEAL_COMMON_NAME = "存管银行电子签章（{code}）"
PLATFORM_PUBLIC_KEY = "platform.pub.pem"
PLATFORM_ROOT = "platform-root.cert.pem"  # the platform CA's root, handed to the banks with their certificates


def bank_private_key_path(folder: Path, bank_code: str) -> Path:
    return Path(folder) / f"{bank_code}.key.pem"


def bank_certificate_path(folder: Path, bank_code: str) -> Path:
    return Path(folder) / f"{bank_code}.cert.pem"


def ensure_bank_keys(
    folder: Path,
    bank_codes: Iterable[str],
    platform_public_key: Path | None = None,
    certificate_valid_from: datetime | None = None,
) -> None:
    """Create each bank's missing key and seal certificate (existing ones are kept; new ones valid from
    `certificate_valid_from`, default now), and take a copy of the platform's public key when
    `platform_public_key` names one."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    for code in bank_codes:
        key = ensure_private_key(bank_private_key_path(folder, code))
        certificate = bank_certificate_path(folder, code)
        if not certificate.exists():
            name = BANK_SEAL_COMMON_NAME.format(code=code)
            certificate.write_bytes(make_self_signed_certificate(key, name, code, valid_from=certificate_valid_from))
    if platform_public_key is not None and platform_public_key.is_file():
        shutil.copyfile(platform_public_key, folder / PLATFORM_PUBLIC_KEY)


def simulated_bank_identity(bank_code: str) -> Organization:
    """A made-up legal name and 统一社会信用代码 (valid check character, digits from the code) for a simulated
    bank: no real bank's identity goes into a test certificate."""
    known = configured_banks().get(bank_code)
    digits = str(int.from_bytes(hashlib.sha256(bank_code.encode()).digest()[:8], "big"))[:9].rjust(9, "0")
    first_17 = "91110000" + digits
    return Organization(f"{known.name if known else bank_code}（模拟）", first_17 + uscc_check_character(first_17))


def certify_simulated_banks(
    platform_keys_dir: Path,
    bank_keys_dir: Path,
    bank_codes: Iterable[str],
    certificate_valid_from: datetime | None = None,
) -> list[str]:
    """Have the platform CA certify each simulated bank's key: its self-signed certificate is the request; the
    issued one replaces it in the bank's folder, with the CA's root beside it, and is imported into the
    platform's. A bank already holding a certificate from this CA keeps it. Each bank also gets its GB/T 38540
    seal for that certificate (made once; `CODE.seal.der` in both folders, `provide_bank_seal`). Returns the
    codes certified."""
    root = load_ca(platform_keys_dir).certificate
    folder = Path(bank_keys_dir)
    (folder / PLATFORM_ROOT).write_bytes(load_ca(platform_keys_dir).certificate_pem)
    certified = []
    for code in sorted(bank_codes):
        path = bank_certificate_path(folder, code)
        current = load_certificate(path.read_bytes())
        if not signed_by(current, root):
            request = path.read_bytes()
            if not signed_by(current, current):  # issued by another CA: the bank makes a new request
                key = bank_private_key_path(folder, code).read_bytes()
                request = make_self_signed_certificate(key, BANK_SEAL_COMMON_NAME.format(code=code), code)
            identity, name = simulated_bank_identity(code), BANK_SEAL_COMMON_NAME.format(code=code)
            issued = issue_bank_seal(
                platform_keys_dir, request, identity, valid_from=certificate_valid_from, common_name=name
            )
            temporary = path.with_name(path.name + ".new")
            temporary.write_bytes(issued)
            temporary.replace(path)
            certified.append(code)
        import_bank_certificate(platform_keys_dir, code, path.read_bytes())
        provide_bank_seal(platform_keys_dir, folder, code, path.read_bytes())
    return certified


def provide_bank_seal(platform_keys_dir: Path, bank_keys_dir: Path, bank_code: str, certificate_pem: bytes) -> None:
    """The bank's seal made by the platform CA for `certificate_pem` (kept as `banks/CODE.seal.der`, unless the
    one there fits) and handed to the bank (`CODE.seal.der` beside its key), which carries it in its signatures."""
    kept = bank_seal_path(Path(platform_keys_dir) / "banks", bank_code)
    ensure_seal(platform_keys_dir, kept, certificate_pem)
    own = bank_seal_path(bank_keys_dir, bank_code)
    if not own.is_file() or own.read_bytes() != kept.read_bytes():
        write_seal(own, kept.read_bytes())


def provision_simulated_banks(
    platform_keys_dir: Path,
    bank_keys_dir: Path,
    bank_codes: Iterable[str],
    certificate_valid_from: datetime | None = None,
) -> None:
    """A platform and its simulated banks on one machine (`make setup`, tests, the sandbox): the platform's
    keys, each bank's own keys in `bank_keys_dir` (with the platform's public key), and the banks'
    certificates issued by the platform CA and imported into the platform's folder - what `flask keys init`,
    `bank-sim keys` and `bank-sim certify` do. New seal certificates are valid from `certificate_valid_from`
    (default now): a simulation whose clock starts in the past gives its start."""
    codes = sorted(bank_codes)
    ensure_keys(platform_keys_dir, certificate_valid_from)
    ensure_bank_keys(bank_keys_dir, codes, Path(platform_keys_dir) / PLATFORM_PUBLIC_KEY, certificate_valid_from)
    certify_simulated_banks(platform_keys_dir, bank_keys_dir, codes, certificate_valid_from)
