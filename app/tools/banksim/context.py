"""The running simulator's parts, shared by its views: store, bank operations, worker and keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from app.banks.protocol import TIMESTAMP_TOLERANCE_S, SignedRequest
from app.platform.errors import ConfigError
from app.tools.banksim.banks import SIMULATED_BANKS
from app.tools.banksim.operations import BankOperations
from app.tools.banksim.store import Store
from app.tools.banksim.worker import BackgroundWorker

EXTENSION_KEY = "bank_simulator"


@dataclass(frozen=True)
class SimulatorKeys:
    platform_public_key_pem: bytes
    bank_private_keys: dict[str, bytes]


def load_keys(keys_dir: Path) -> SimulatorKeys:
    """The platform public key (to verify requests) and each simulated bank's private key (to sign callbacks)."""
    paths = {"platform": keys_dir / "platform.pub.pem"} | {
        code: keys_dir / "banks" / f"{code}.key.pem" for code in SIMULATED_BANKS
    }
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise ConfigError("找不到银行模拟器所需的密钥文件", details={"missing": missing})
    return SimulatorKeys(
        platform_public_key_pem=paths["platform"].read_bytes(),
        bank_private_keys={code: paths[code].read_bytes() for code in SIMULATED_BANKS},
    )


@dataclass(frozen=True)
class Simulator:
    store: Store
    operations: BankOperations
    worker: BackgroundWorker
    keys: SimulatorKeys

    def remember_nonce(self, signed: SignedRequest) -> bool:
        """Keep the nonce until its timestamp is stale anyway; False if it was seen before."""
        with self.store.transaction() as tx:
            return tx.remember_nonce(
                signed.nonce, expires_at=signed.timestamp + TIMESTAMP_TOLERANCE_S + 1, now=self.operations.clock()
            )


def current_simulator() -> Simulator:
    return current_app.extensions[EXTENSION_KEY]
