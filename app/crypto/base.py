"""The provider interface and the SM4 token format, which is built only on each provider's primitives.

Token layout (all lengths in bytes)::

    version (1, = 0x01) | IV (16) | SM4-CBC ciphertext, PKCS#7 padded (16*n) | HMAC-SM3 tag (32)

The tag covers version, IV and ciphertext (encrypt-then-MAC). The MAC key is derived from the SM4 key
with the GM/T 0003 SM3 key derivation function, so one 16-byte key serves both purposes.
"""

from __future__ import annotations

import hmac
import os
from abc import ABC, abstractmethod

from app.platform.errors import CryptoError

SM2_DEFAULT_USER_ID = b"1234567812345678"
SM4_KEY_SIZE = 16
SM4_BLOCK_SIZE = 16
SM3_DIGEST_SIZE = 32
TOKEN_VERSION = 1

_MAC_KEY_LABEL = b"cunguan/sm4-token/v1/hmac-sm3-key"
_MIN_TOKEN_SIZE = 1 + SM4_BLOCK_SIZE + SM4_BLOCK_SIZE + SM3_DIGEST_SIZE


class Provider(ABC):
    """SM2/SM3/SM4 operations. Every provider produces and accepts the same byte formats."""

    name: str

    @abstractmethod
    def sm3(self, data: bytes) -> bytes:
        """SM3 digest (32 bytes)."""

    @abstractmethod
    def hmac_sm3(self, key: bytes, data: bytes) -> bytes:
        """HMAC (RFC 2104) with SM3."""

    @abstractmethod
    def sm2_sign(self, private_key_pem: bytes, data: bytes) -> bytes:
        """SM2 signature over SM3(Z || data), Z with the default user id; DER SEQUENCE {r, s}."""

    @abstractmethod
    def sm2_verify(self, public_key_pem: bytes, data: bytes, signature_der: bytes) -> bool:
        """True only for a valid DER signature; False for any bad or malformed signature."""

    @abstractmethod
    def sm4_encrypt_block(self, key: bytes, block: bytes) -> bytes:
        """The raw SM4 block cipher on one 16-byte block (ECB, no padding)."""

    @abstractmethod
    def _sm4_cbc_encrypt(self, key: bytes, iv: bytes, padded: bytes) -> bytes:
        """SM4-CBC over whole blocks, without padding."""

    @abstractmethod
    def _sm4_cbc_decrypt(self, key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
        """Inverse of `_sm4_cbc_encrypt`."""

    def sm3_kdf(self, seed: bytes, length: int) -> bytes:
        """GM/T 0003.4 key derivation: SM3(seed || counter) for counter = 1, 2, ... (32-bit big endian)."""
        output = b"".join(
            self.sm3(seed + counter.to_bytes(4, "big")) for counter in range(1, -(-length // SM3_DIGEST_SIZE) + 1)
        )
        return output[:length]

    def sm4_encrypt(self, key: bytes, plaintext: bytes) -> bytes:
        _check_sm4_key(key)
        iv = os.urandom(SM4_BLOCK_SIZE)
        pad = SM4_BLOCK_SIZE - len(plaintext) % SM4_BLOCK_SIZE
        ciphertext = self._sm4_cbc_encrypt(key, iv, plaintext + bytes([pad]) * pad)
        body = bytes([TOKEN_VERSION]) + iv + ciphertext
        return body + self.hmac_sm3(self._mac_key(key), body)

    def sm4_decrypt(self, key: bytes, token: bytes) -> bytes:
        _check_sm4_key(key)
        failed = CryptoError("数据解密失败：密文已损坏、被篡改或密钥不正确", code="DECRYPT_FAILED")
        if (
            len(token) < _MIN_TOKEN_SIZE
            or (len(token) - 1 - SM3_DIGEST_SIZE) % SM4_BLOCK_SIZE
            or token[0] != TOKEN_VERSION
        ):
            raise failed
        body, tag = token[:-SM3_DIGEST_SIZE], token[-SM3_DIGEST_SIZE:]
        if not hmac.compare_digest(self.hmac_sm3(self._mac_key(key), body), tag):
            raise failed
        iv, ciphertext = body[1 : 1 + SM4_BLOCK_SIZE], body[1 + SM4_BLOCK_SIZE :]
        padded = self._sm4_cbc_decrypt(key, iv, ciphertext)
        pad = padded[-1]
        if not 1 <= pad <= SM4_BLOCK_SIZE or padded[-pad:] != bytes([pad]) * pad:
            raise failed
        return padded[:-pad]

    def _mac_key(self, key: bytes) -> bytes:
        return self.sm3_kdf(_MAC_KEY_LABEL + key, SM3_DIGEST_SIZE)


def _check_sm4_key(key: bytes) -> None:
    if len(key) != SM4_KEY_SIZE:
        raise CryptoError("SM4 密钥长度必须为 16 字节", code="INVALID_KEY", details={"length": len(key)})
