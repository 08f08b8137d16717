"""C-backed provider: SM2 through the system OpenSSL 3 (libcrypto via ctypes), SM3/SM4 through `cryptography`."""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from app.crypto.base import SM2_DEFAULT_USER_ID, SM4_BLOCK_SIZE, Provider
from app.platform.errors import CryptoError

_P = ctypes.c_void_p
_BIO_CTRL_INFO = 3  # BIO_get_mem_data() is a macro for BIO_ctrl(bio, BIO_CTRL_INFO, 0, &ptr)
_MIN_OPENSSL_VERSION = 0x30000000
# Passed as the PEM password callback argument: encrypted keys then fail instead of prompting on a terminal.
_NO_PASSPHRASE = b""

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "OpenSSL_version_num": (ctypes.c_ulong, []),
    "ERR_get_error": (ctypes.c_ulong, []),
    "ERR_error_string_n": (None, [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]),
    "ERR_clear_error": (None, []),
    "BIO_new_mem_buf": (_P, [ctypes.c_char_p, ctypes.c_int]),
    "BIO_new": (_P, [_P]),
    "BIO_s_mem": (_P, []),
    "BIO_ctrl": (ctypes.c_long, [_P, ctypes.c_int, ctypes.c_long, _P]),
    "BIO_free": (ctypes.c_int, [_P]),
    "PEM_read_bio_PrivateKey": (_P, [_P, _P, _P, ctypes.c_char_p]),
    "PEM_read_bio_PUBKEY": (_P, [_P, _P, _P, ctypes.c_char_p]),
    "PEM_write_bio_PrivateKey": (ctypes.c_int, [_P, _P, _P, _P, ctypes.c_int, _P, _P]),
    "PEM_write_bio_PUBKEY": (ctypes.c_int, [_P, _P]),
    "EVP_PKEY_is_a": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "EVP_PKEY_free": (None, [_P]),
    "EVP_PKEY_up_ref": (ctypes.c_int, [_P]),
    "EVP_PKEY_CTX_new": (_P, [_P, _P]),
    "EVP_PKEY_CTX_new_from_name": (_P, [_P, ctypes.c_char_p, ctypes.c_char_p]),
    "EVP_PKEY_CTX_free": (None, [_P]),
    "EVP_PKEY_CTX_set1_id": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int]),
    "EVP_PKEY_keygen_init": (ctypes.c_int, [_P]),
    "EVP_PKEY_generate": (ctypes.c_int, [_P, ctypes.POINTER(_P)]),
    "EVP_MD_CTX_new": (_P, []),
    "EVP_MD_CTX_free": (None, [_P]),
    "EVP_MD_CTX_set_pkey_ctx": (None, [_P, _P]),
    "EVP_sm3": (_P, []),
    "EVP_DigestSignInit": (ctypes.c_int, [_P, _P, _P, _P, _P]),
    "EVP_DigestSign": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p, ctypes.c_size_t],
    ),
    "EVP_DigestVerifyInit": (ctypes.c_int, [_P, _P, _P, _P, _P]),
    "EVP_DigestVerify": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]),
}


@cache
def libcrypto() -> ctypes.CDLL:
    """The system libcrypto (OpenSSL >= 3.0) with the prototypes used here declared."""
    candidates = [name for name in (ctypes.util.find_library("crypto"), "libcrypto.so.3") if name]
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        if lib.OpenSSL_version_num() < _MIN_OPENSSL_VERSION:
            continue
        for function_name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(lib, function_name)
            function.restype = restype
            function.argtypes = argtypes
        return lib
    raise CryptoError("未找到 OpenSSL 3 的 libcrypto，无法使用 SM2", code="OPENSSL_UNAVAILABLE", details=candidates)


def _openssl_errors() -> list[str]:
    lib = libcrypto()
    errors = []
    buffer = ctypes.create_string_buffer(256)
    while code := lib.ERR_get_error():
        lib.ERR_error_string_n(code, buffer, len(buffer))
        errors.append(buffer.value.decode("ascii", "replace"))
    return errors


def _fail(message: str, code: str) -> CryptoError:
    return CryptoError(message, code=code, details=_openssl_errors() or None)


@contextmanager
def _owned(pointer: int | None, free: Callable[[int], Any], message: str, code: str) -> Iterator[int]:
    """Yield a non-NULL OpenSSL pointer and free it afterwards; NULL raises CryptoError."""
    if not pointer:
        raise _fail(message, code)
    try:
        yield pointer
    finally:
        free(pointer)


_KEY_CACHE_SIZE = 64
_key_cache: dict[tuple[bytes, bool], int] = {}
_key_cache_lock = threading.Lock()


@contextmanager
def _sm2_key(pem: bytes, *, private: bool) -> Iterator[int]:
    """A parsed SM2 key. Parsing a PEM costs more than a signature, so the first _KEY_CACHE_SIZE distinct keys
    stay parsed for the life of the process (an EVP_PKEY is safe to share between threads for signing and
    verifying: every operation gets its own contexts); further keys are parsed and freed per call."""
    cached = _key_cache.get((pem, private))
    if cached is not None:
        yield cached
        return
    with _parse_sm2_key(pem, private=private) as key:
        with _key_cache_lock:
            if (pem, private) not in _key_cache and len(_key_cache) < _KEY_CACHE_SIZE:
                _key_cache[(pem, private)] = _up_ref(key)
        yield key


def _up_ref(key: int) -> int:
    """Take a reference of our own on `key` (the cache's), so that the caller's free does not release it."""
    if libcrypto().EVP_PKEY_up_ref(key) != 1:
        raise _fail("无法缓存 SM2 密钥", "OPENSSL_ERROR")
    return key


@contextmanager
def _parse_sm2_key(pem: bytes, *, private: bool) -> Iterator[int]:
    lib = libcrypto()
    with _owned(lib.BIO_new_mem_buf(pem, len(pem)), lib.BIO_free, "无法读取密钥数据", "INVALID_KEY") as bio:
        reader = lib.PEM_read_bio_PrivateKey if private else lib.PEM_read_bio_PUBKEY
        pkey = reader(bio, None, None, _NO_PASSPHRASE)
    kind = "私钥" if private else "公钥"
    with _owned(pkey, lib.EVP_PKEY_free, f"无法解析 SM2 {kind} PEM", "INVALID_KEY") as key:
        if lib.EVP_PKEY_is_a(key, b"SM2") != 1:
            raise CryptoError(f"{kind}不是 SM2 密钥", code="INVALID_KEY")
        yield key


def _bio_contents(bio: int) -> bytes:
    data = ctypes.c_void_p()
    length = libcrypto().BIO_ctrl(bio, _BIO_CTRL_INFO, 0, ctypes.byref(data))
    return ctypes.string_at(data, length)


def _write_pem(write: Callable[[int], int]) -> bytes:
    lib = libcrypto()
    with _owned(lib.BIO_new(lib.BIO_s_mem()), lib.BIO_free, "内存分配失败", "OPENSSL_ERROR") as bio:
        if write(bio) != 1:
            raise _fail("无法导出 SM2 密钥 PEM", "OPENSSL_ERROR")
        return _bio_contents(bio)


def generate_sm2_private_key_pem() -> bytes:
    """A fresh SM2 key as unencrypted PKCS#8 PEM."""
    lib = libcrypto()
    ctx_pointer = lib.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
    with _owned(ctx_pointer, lib.EVP_PKEY_CTX_free, "无法创建 SM2 密钥生成上下文", "KEYGEN_FAILED") as ctx:
        pkey = ctypes.c_void_p()
        if lib.EVP_PKEY_keygen_init(ctx) != 1 or lib.EVP_PKEY_generate(ctx, ctypes.byref(pkey)) != 1:
            raise _fail("SM2 密钥生成失败", "KEYGEN_FAILED")
    with _owned(pkey.value, lib.EVP_PKEY_free, "SM2 密钥生成失败", "KEYGEN_FAILED") as key:
        return _write_pem(lambda bio: lib.PEM_write_bio_PrivateKey(bio, key, None, None, 0, None, None))


def sm2_public_key_pem(private_key_pem: bytes) -> bytes:
    """SubjectPublicKeyInfo PEM of an SM2 private key."""
    lib = libcrypto()
    with _sm2_key(private_key_pem, private=True) as key:
        return _write_pem(lambda bio: lib.PEM_write_bio_PUBKEY(bio, key))


@contextmanager
def _digest_context(key: int, *, sign: bool) -> Iterator[int]:
    """An EVP_MD_CTX initialised for SM2-with-SM3 with the default distinguishing id."""
    lib = libcrypto()
    # EVP_MD_CTX_set_pkey_ctx does not transfer ownership: pkey_ctx is freed here, after md_ctx.
    with (
        _owned(lib.EVP_PKEY_CTX_new(key, None), lib.EVP_PKEY_CTX_free, "内存分配失败", "OPENSSL_ERROR") as pkey_ctx,
        _owned(lib.EVP_MD_CTX_new(), lib.EVP_MD_CTX_free, "内存分配失败", "OPENSSL_ERROR") as md_ctx,
    ):
        if lib.EVP_PKEY_CTX_set1_id(pkey_ctx, SM2_DEFAULT_USER_ID, len(SM2_DEFAULT_USER_ID)) != 1:
            raise _fail("无法设置 SM2 用户标识", "OPENSSL_ERROR")
        lib.EVP_MD_CTX_set_pkey_ctx(md_ctx, pkey_ctx)
        init = lib.EVP_DigestSignInit if sign else lib.EVP_DigestVerifyInit
        if init(md_ctx, None, lib.EVP_sm3(), None, key) != 1:
            raise _fail("无法初始化 SM2 签名运算", "OPENSSL_ERROR")
        yield md_ctx


class OpenSSLProvider(Provider):
    name = "openssl"

    def sm3(self, data: bytes) -> bytes:
        digest = hashes.Hash(hashes.SM3())
        digest.update(data)
        return digest.finalize()

    def hmac_sm3(self, key: bytes, data: bytes) -> bytes:
        mac = hmac.HMAC(key, hashes.SM3())
        mac.update(data)
        return mac.finalize()

    def sm2_sign(self, private_key_pem: bytes, data: bytes) -> bytes:
        lib = libcrypto()
        with _sm2_key(private_key_pem, private=True) as key, _digest_context(key, sign=True) as md_ctx:
            size = ctypes.c_size_t(0)
            if lib.EVP_DigestSign(md_ctx, None, ctypes.byref(size), data, len(data)) != 1:
                raise _fail("SM2 签名失败", "SIGN_FAILED")
            signature = ctypes.create_string_buffer(size.value)
            if lib.EVP_DigestSign(md_ctx, signature, ctypes.byref(size), data, len(data)) != 1:
                raise _fail("SM2 签名失败", "SIGN_FAILED")
            return signature.raw[: size.value]

    def sm2_verify(self, public_key_pem: bytes, data: bytes, signature_der: bytes) -> bool:
        lib = libcrypto()
        with _sm2_key(public_key_pem, private=False) as key, _digest_context(key, sign=False) as md_ctx:
            result = lib.EVP_DigestVerify(md_ctx, signature_der, len(signature_der), data, len(data))
        lib.ERR_clear_error()  # a rejected signature leaves entries on the thread's error queue
        return result == 1

    def sm4_encrypt_block(self, key: bytes, block: bytes) -> bytes:
        if len(block) != SM4_BLOCK_SIZE:
            raise CryptoError("SM4 分组长度必须为 16 字节", code="INVALID_BLOCK")
        encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
        return encryptor.update(block) + encryptor.finalize()

    def _sm4_cbc_encrypt(self, key: bytes, iv: bytes, padded: bytes) -> bytes:
        encryptor = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
        return encryptor.update(padded) + encryptor.finalize()

    def _sm4_cbc_decrypt(self, key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
        decryptor = Cipher(algorithms.SM4(key), modes.CBC(iv)).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()
