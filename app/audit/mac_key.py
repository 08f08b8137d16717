"""The audit log's MAC key: a file in the keys folder (`audit-mac.key`, made by `flask keys init`), never in the
database, so that whoever owns the database cannot forge or rewrite an entry. Loaded once at start-up, like the
PII keyring: appending and verifying both refuse, with a clear message, while it is missing."""

from __future__ import annotations

from pathlib import Path

from app.crypto.keys import AUDIT_MAC_KEY_FILE
from app.platform.errors import ConfigError


class AuditMacKey:
    def __init__(self) -> None:
        self._key: bytes | None = None
        self._path = Path(AUDIT_MAC_KEY_FILE)

    def configure_from_folder(self, folder: Path) -> bool:
        """Load `folder`'s key file; without one the key is unset (never a stale key of another folder)."""
        self._path = Path(folder) / AUDIT_MAC_KEY_FILE
        self._key = bytes.fromhex(self._path.read_text().strip()) if self._path.is_file() else None
        return self._key is not None

    def key(self) -> bytes:
        if self._key is None:
            raise ConfigError(
                f"审计日志 MAC 密钥缺失：{self._path}（请从密钥备份恢复，或运行 flask keys init；该密钥不在数据库中）",
                code="AUDIT_MAC_KEY_MISSING",
                details={"path": str(self._path)},
            )
        return self._key


mac_key = AuditMacKey()
