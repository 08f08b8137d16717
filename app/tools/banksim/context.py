"""The running simulator's parts, shared by its views: store, bank operations, worker and keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from app.banks.protocol import TIMESTAMP_TOLERANCE_S, SignedRequest
from app.platform.errors import ConfigError
from app.seals.issue import bank_seal_path
from app.tools.banksim.banks import SIMULATED_BANKS, SimulatedBank
from app.tools.banksim.keys import PLATFORM_PUBLIC_KEY, PLATFORM_ROOT, bank_certificate_path, bank_private_key_path
from app.tools.banksim.operations import BankOperations
from app.tools.banksim.store import Store
from app.tools.banksim.worker import BackgroundWorker

EXTENSION_KEY = "bank_simulator"


@dataclass(frozen=True)
class SimulatorKeys:
    platform_public_key_pem: bytes
    bank_private_keys: dict[str, bytes]
    bank_certificates: dict[str, bytes]
    chain: tuple[bytes, ...] = ()  # the platform CA's root, carried in the banks' signatures
    seals: dict[str, bytes] = field(default_factory=dict)  # each bank's GB/T 38540 seal (DER), when it has one


def load_keys(keys_dir: Path, bank_codes: Iterable[str] = SIMULATED_BANKS) -> SimulatorKeys:
    """From the simulator's own folder (app.tools.banksim.keys): the platform public key (to verify requests),
    each simulated bank's (`bank_codes`) private key (to sign callbacks, statements and agreements), seal
    certificate and, once the platform CA made it (`bank-sim certify`), its GB/T 38540 seal."""
    codes = sorted(bank_codes)
    keys = {code: bank_private_key_path(keys_dir, code) for code in codes}
    certificates = {code: bank_certificate_path(keys_dir, code) for code in codes}
    platform = keys_dir / PLATFORM_PUBLIC_KEY
    missing = [str(path) for path in (platform, *keys.values(), *certificates.values()) if not path.is_file()]
    if missing:
        raise ConfigError("找不到银行模拟器所需的密钥文件", details={"missing": missing})
    return SimulatorKeys(
        platform_public_key_pem=platform.read_bytes(),
        bank_private_keys={code: path.read_bytes() for code, path in keys.items()},
        bank_certificates={code: path.read_bytes() for code, path in certificates.items()},
        chain=(root.read_bytes(),) if (root := keys_dir / PLATFORM_ROOT).is_file() else (),
        seals={code: path.read_bytes() for code in codes if (path := bank_seal_path(keys_dir, code)).is_file()},
    )


@dataclass(frozen=True)
class Simulator:
    store: Store
    operations: BankOperations
    worker: BackgroundWorker
    keys: SimulatorKeys

    @property
    def banks(self) -> Mapping[str, SimulatedBank]:
        """The banks this simulator plays, by code."""
        return self.operations.banks

    def remember_nonce(self, signed: SignedRequest) -> bool:
        """Keep the nonce until its timestamp is stale anyway; False if it was seen before."""
        with self.store.transaction() as tx:
            return tx.remember_nonce(
                signed.nonce, expires_at=signed.timestamp + TIMESTAMP_TOLERANCE_S + 1, now=self.operations.clock()
            )


def current_simulator() -> Simulator:
    return current_app.extensions[EXTENSION_KEY]
