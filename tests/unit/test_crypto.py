"""Both SM providers against standard vectors and against each other."""

from __future__ import annotations

import pytest

from app.crypto import get_provider, sm3, sm4_decrypt, sm4_encrypt
from app.crypto.base import Provider
from app.crypto.keys import generate_sm2_private_key_pem, public_key_pem_from_private
from app.errors import CryptoError

PROVIDERS = ("openssl", "gmssl")
SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"  # GB/T 32905 example 1
SM3_ABCD_X16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"  # GB/T 32905 example 2
SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
SM4_CIPHERTEXT = "681edf34d206965e86b3e94f536e4246"  # GB/T 32907 example 1


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    private = generate_sm2_private_key_pem()
    return private, public_key_pem_from_private(private)


@pytest.mark.parametrize("name", PROVIDERS)
def test_sm3_standard_vectors(name: str) -> None:
    provider = get_provider(name)
    assert provider.sm3(b"abc").hex() == SM3_ABC
    assert provider.sm3(b"abcd" * 16).hex() == SM3_ABCD_X16


@pytest.mark.parametrize("name", PROVIDERS)
def test_sm4_standard_vector_on_the_raw_block(name: str) -> None:
    assert get_provider(name).sm4_encrypt_block(SM4_KEY, SM4_KEY).hex() == SM4_CIPHERTEXT


@pytest.mark.parametrize(("signer", "verifier"), [(a, b) for a in PROVIDERS for b in PROVIDERS])
def test_sm2_signatures_cross_verify(signer: str, verifier: str, key_pair: tuple[bytes, bytes]) -> None:
    private, public = key_pair
    message = "过户完成，放款 ¥1,234,567.89".encode()
    signature = get_provider(signer).sm2_sign(private, message)
    check: Provider = get_provider(verifier)
    assert check.sm2_verify(public, message, signature)
    assert not check.sm2_verify(public, message + b".", signature)
    tampered = bytearray(signature)
    tampered[-1] ^= 0x01
    assert not check.sm2_verify(public, message, bytes(tampered))
    assert not check.sm2_verify(public, message, b"\x30\x03garbage")
    other = public_key_pem_from_private(generate_sm2_private_key_pem())
    assert not check.sm2_verify(other, message, signature)


def test_sm2_signatures_are_randomised(key_pair: tuple[bytes, bytes]) -> None:
    private, _ = key_pair
    assert get_provider("openssl").sm2_sign(private, b"x") != get_provider("openssl").sm2_sign(private, b"x")


@pytest.mark.parametrize(("encrypter", "decrypter"), [(a, b) for a in PROVIDERS for b in PROVIDERS])
@pytest.mark.parametrize("plaintext", [b"", b"110105194912310021", "中文".encode() * 40])
def test_sm4_tokens_round_trip_across_providers(encrypter: str, decrypter: str, plaintext: bytes) -> None:
    token = get_provider(encrypter).sm4_encrypt(SM4_KEY, plaintext)
    assert plaintext not in token or not plaintext
    assert get_provider(decrypter).sm4_decrypt(SM4_KEY, token) == plaintext


@pytest.mark.parametrize("name", PROVIDERS)
def test_sm4_detects_tampering_and_wrong_keys(name: str) -> None:
    provider = get_provider(name)
    token = provider.sm4_encrypt(SM4_KEY, b"6222020200112233445")
    for position in (0, 5, len(token) // 2, len(token) - 1):
        broken = bytearray(token)
        broken[position] ^= 0x80
        with pytest.raises(CryptoError) as caught:
            provider.sm4_decrypt(SM4_KEY, bytes(broken))
        assert caught.value.code == "DECRYPT_FAILED"
    with pytest.raises(CryptoError):
        provider.sm4_decrypt(bytes(16), token)
    with pytest.raises(CryptoError):
        provider.sm4_decrypt(SM4_KEY, token[:20])
    with pytest.raises(CryptoError):
        provider.sm4_encrypt(b"short", b"x")


def test_facade_uses_the_c_backed_provider() -> None:
    assert get_provider().name == "openssl"
    assert sm3(b"abc").hex() == SM3_ABC
    assert sm4_decrypt(SM4_KEY, sm4_encrypt(SM4_KEY, b"abc")) == b"abc"
    with pytest.raises(CryptoError):
        get_provider("nonexistent")
