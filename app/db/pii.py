"""PII columns: SM4-encrypted at rest with a key id (for rotation); plain text only in memory."""

from __future__ import annotations

import base64

from sqlalchemy import String, Text
from sqlalchemy.types import TypeDecorator

from app.crypto import sm4_decrypt, sm4_encrypt
from app.errors import ConfigError


class PiiKeyring:
    """The active key encrypts; every known key id can decrypt."""

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}
        self._active: str | None = None

    def configure(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise ConfigError("PII 加密密钥未配置", code="PII_KEY_MISSING", details={"key_id": active})
        self._keys = dict(keys)
        self._active = active

    def encrypt(self, plaintext: str) -> str:
        if self._active is None:
            raise ConfigError("PII 加密密钥未配置", code="PII_KEY_MISSING")
        token = sm4_encrypt(self._keys[self._active], plaintext.encode())
        return f"{self._active}${base64.b64encode(token).decode()}"

    def decrypt(self, stored: str) -> str:
        key_id, _, payload = stored.partition("$")
        if key_id not in self._keys:
            raise ConfigError("PII 解密密钥缺失", code="PII_KEY_MISSING", details={"key_id": key_id})
        return sm4_decrypt(self._keys[key_id], base64.b64decode(payload)).decode()


keyring = PiiKeyring()


class EncryptedString(TypeDecorator[str]):
    impl = String(512)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else keyring.encrypt(value)

    def process_result_value(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else keyring.decrypt(value)


class EncryptedText(EncryptedString):
    """Like EncryptedString, for values of any length (e.g. a whole form draft as JSON)."""

    impl = Text()
    cache_ok = True
