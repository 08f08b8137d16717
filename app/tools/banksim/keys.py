"""The simulated banks' own keys, kept in the simulator's folder and nowhere else.

Each bank holds its SM2 private key (CODE.key.pem, 0600) and its seal certificate (CODE.cert.pem); the
platform gets the certificates only (`flask keys import-bank`). The folder also holds the platform's public
key the banks were given at onboarding (platform.pub.pem), to verify the platform's requests.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from app.crypto.keys import ensure_keys, ensure_private_key, import_bank_certificate, make_self_signed_certificate

BANK_SEAL_COMMON_NAME = "存管银行电子签章（{code}）"
PLATFORM_PUBLIC_KEY = "platform.pub.pem"


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


def provision_simulated_banks(
    platform_keys_dir: Path,
    bank_keys_dir: Path,
    bank_codes: Iterable[str],
    certificate_valid_from: datetime | None = None,
) -> None:
    """A platform and its simulated banks on one machine (`make setup`, tests, the sandbox): the platform's
    keys, each bank's own keys in `bank_keys_dir` (with the platform's public key), and the banks'
    certificates imported into the platform's folder - what `flask keys init`, `bank-sim keys` and
    `flask keys import-bank --from-dir` do. New seal certificates are valid from `certificate_valid_from`
    (default now): a simulation whose clock starts in the past gives its start."""
    codes = sorted(bank_codes)
    ensure_keys(platform_keys_dir, certificate_valid_from)
    ensure_bank_keys(bank_keys_dir, codes, Path(platform_keys_dir) / PLATFORM_PUBLIC_KEY, certificate_valid_from)
    for code in codes:
        import_bank_certificate(platform_keys_dir, code, bank_certificate_path(bank_keys_dir, code).read_bytes())
