"""ShangMi cryptography facade: SM2 signatures, SM3 digests and authenticated SM4 tokens.

Two interchangeable providers produce and accept the same byte formats: "openssl" (C-backed, the default)
and "gmssl" (pure-Python reference implementation, used to cross-check).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from app.crypto.base import SM2_DEFAULT_USER_ID, Provider
from app.platform.errors import CryptoError

DEFAULT_PROVIDER = "openssl"

__all__ = [
    "DEFAULT_PROVIDER",
    "SM2_DEFAULT_USER_ID",
    "Provider",
    "get_provider",
    "sm2_sign",
    "sm2_verify",
    "sm3",
    "sm4_decrypt",
    "sm4_encrypt",
]


def _openssl() -> Provider:
    from app.crypto.openssl_provider import OpenSSLProvider

    return OpenSSLProvider()


def _gmssl() -> Provider:
    from app.crypto.gmssl_provider import GmsslProvider

    return GmsslProvider()


_FACTORIES: dict[str, Callable[[], Provider]] = {"openssl": _openssl, "gmssl": _gmssl}


@cache
def get_provider(name: str = DEFAULT_PROVIDER) -> Provider:
    """The provider called `name` ("openssl" or "gmssl"); one shared instance per name."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise CryptoError("未知的密码算法实现", code="UNKNOWN_PROVIDER", details={"name": name})
    return factory()


def sm3(data: bytes) -> bytes:
    """SM3 digest, 32 bytes."""
    return get_provider().sm3(data)


def sm2_sign(private_key_pem: bytes, data: bytes) -> bytes:
    """DER (r, s) SM2 signature over SM3(Z || data), Z with the default user id "1234567812345678"."""
    return get_provider().sm2_sign(private_key_pem, data)


def sm2_verify(public_key_pem: bytes, data: bytes, signature_der: bytes) -> bool:
    """False for a wrong or malformed signature; raises CryptoError only for an unusable public key."""
    return get_provider().sm2_verify(public_key_pem, data, signature_der)


def sm4_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """Versioned token: SM4-CBC with a random IV, then HMAC-SM3 over it (16-byte key)."""
    return get_provider().sm4_encrypt(key, plaintext)


def sm4_decrypt(key: bytes, token: bytes) -> bytes:
    """Plain text of a token; CryptoError(code="DECRYPT_FAILED") if it was altered or the key is wrong."""
    return get_provider().sm4_decrypt(key, token)
