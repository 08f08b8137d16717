"""Pure-Python reference provider on the `gmssl` package, reading the same PEM files as the OpenSSL provider.

gmssl quirks handled here:
- CryptSM2 takes hex strings and signs/verifies raw r||s (64 + 64 hex digits); DER is converted here.
- CryptSM2(public_key=...) runs `lstrip("04")`, which also eats leading "0"/"4" digits of x; the public key
  is therefore assigned after construction.
- Signing needs the public key too (for Z) and its default nonce comes from `random.choice`; the public key
  is derived from the private scalar and the nonce is drawn from `secrets`.
- verify() neither range-checks r and s nor survives the point at infinity; both are handled here.
- sm3_hash() takes a list of ints, appends its padding to that list and returns hex.
- CryptSM4.crypt_cbc() always pads and unpads without checking; CBC is done here on the block function.
"""

from __future__ import annotations

import secrets

from asn1crypto import algos, keys, pem
from gmssl import sm2 as gm_sm2
from gmssl import sm3 as gm_sm3
from gmssl import sm4 as gm_sm4

from app.crypto.asn1 import SM2_CURVE_OID
from app.crypto.base import SM4_BLOCK_SIZE, SM4_KEY_SIZE, Provider
from app.platform.errors import CryptoError

_TABLE = gm_sm2.default_ecc_table
_N = int(_TABLE["n"], 16)
_P = int(_TABLE["p"], 16)
_A = int(_TABLE["a"], 16)
_B = int(_TABLE["b"], 16)
_HMAC_BLOCK_SIZE = 64


def _invalid_key(kind: str) -> CryptoError:
    return CryptoError(f"无法解析 SM2 {kind} PEM", code="INVALID_KEY")


def _unarmor(data: bytes, expected_type: str, kind: str) -> bytes:
    try:
        pem_type, _headers, der = pem.unarmor(data)
    except (ValueError, TypeError):
        raise _invalid_key(kind) from None
    if pem_type != expected_type:
        raise _invalid_key(kind)
    return der


def _check_sm2_algorithm(algorithm: keys.PrivateKeyAlgorithm | keys.PublicKeyAlgorithm, kind: str) -> None:
    parameters = algorithm["parameters"]
    if algorithm["algorithm"].native != "ec" or parameters.name != "named" or parameters.chosen.dotted != SM2_CURVE_OID:
        raise CryptoError(f"{kind}不是 SM2 密钥", code="INVALID_KEY")


def _private_scalar(private_key_pem: bytes) -> int:
    """The private scalar d of a PKCS#8 SM2 private key PEM."""
    der = _unarmor(private_key_pem, "PRIVATE KEY", "私钥")
    try:
        info = keys.PrivateKeyInfo.load(der, strict=True)
        _check_sm2_algorithm(info["private_key_algorithm"], "私钥")
        scalar = info["private_key"].parsed["private_key"].native
    except (ValueError, TypeError, KeyError):
        raise _invalid_key("私钥") from None
    if not 1 <= scalar < _N - 1:
        raise _invalid_key("私钥")
    return scalar


def _public_point_hex(public_key_pem: bytes) -> str:
    """x || y (128 hex digits) of an uncompressed SM2 SubjectPublicKeyInfo PEM, checked to be on the curve."""
    der = _unarmor(public_key_pem, "PUBLIC KEY", "公钥")
    try:
        info = keys.PublicKeyInfo.load(der, strict=True)
        _check_sm2_algorithm(info["algorithm"], "公钥")
        point = info["public_key"].native
    except (ValueError, TypeError, KeyError):
        raise _invalid_key("公钥") from None
    if len(point) != 65 or point[0] != 4:
        raise _invalid_key("公钥")
    x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
    if x >= _P or y >= _P or (y * y - (x * x * x + _A * x + _B)) % _P:
        raise _invalid_key("公钥")
    return point[1:].hex()


def _crypt_sm2(private_key_hex: str, public_key_hex: str) -> gm_sm2.CryptSM2:
    crypt = gm_sm2.CryptSM2(private_key=private_key_hex, public_key="")
    crypt.public_key = public_key_hex
    return crypt


def _sm4_round_keys(key: bytes, mode: int) -> gm_sm4.CryptSM4:
    if len(key) != SM4_KEY_SIZE:
        raise CryptoError("SM4 密钥长度必须为 16 字节", code="INVALID_KEY", details={"length": len(key)})
    cipher = gm_sm4.CryptSM4()
    cipher.set_key(key, mode)
    return cipher


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


class GmsslProvider(Provider):
    name = "gmssl"

    def sm3(self, data: bytes) -> bytes:
        return bytes.fromhex(gm_sm3.sm3_hash(list(data)))

    def hmac_sm3(self, key: bytes, data: bytes) -> bytes:
        if len(key) > _HMAC_BLOCK_SIZE:
            key = self.sm3(key)
        key = key.ljust(_HMAC_BLOCK_SIZE, b"\0")
        inner = self.sm3(bytes(b ^ 0x36 for b in key) + data)
        return self.sm3(bytes(b ^ 0x5C for b in key) + inner)

    def sm2_sign(self, private_key_pem: bytes, data: bytes) -> bytes:
        scalar = _private_scalar(private_key_pem)
        private_hex = f"{scalar:064x}"
        signer = _crypt_sm2(private_hex, "")
        signer.public_key = signer._kg(scalar, _TABLE["g"])
        while True:
            nonce = f"{secrets.randbelow(_N - 1) + 1:064x}"
            raw = signer.sign_with_sm3(data, nonce)
            if raw is not None:  # None when the nonce gives r = 0 or r + k = n: draw another one
                break
        r, s = int(raw[:64], 16), int(raw[64:], 16)
        return algos.DSASignature({"r": r, "s": s}).dump()

    def sm2_verify(self, public_key_pem: bytes, data: bytes, signature_der: bytes) -> bool:
        verifier = _crypt_sm2("", _public_point_hex(public_key_pem))
        try:
            signature = algos.DSASignature.load(signature_der, strict=True)
            r, s = signature["r"].native, signature["s"].native
        except (ValueError, TypeError):
            return False
        # OpenSSL accepts only canonical DER; so does this provider.
        if algos.DSASignature({"r": r, "s": s}).dump() != signature_der:
            return False
        if not (1 <= r < _N and 1 <= s < _N):
            return False
        try:
            return bool(verifier.verify_with_sm3(f"{r:064x}{s:064x}", data))
        except TypeError:  # gmssl reaches the point at infinity for some forged (r, s)
            return False

    def sm4_encrypt_block(self, key: bytes, block: bytes) -> bytes:
        if len(block) != SM4_BLOCK_SIZE:
            raise CryptoError("SM4 分组长度必须为 16 字节", code="INVALID_BLOCK")
        cipher = _sm4_round_keys(key, gm_sm4.SM4_ENCRYPT)
        return bytes(cipher.one_round(cipher.sk, list(block)))

    def _sm4_cbc_encrypt(self, key: bytes, iv: bytes, padded: bytes) -> bytes:
        cipher = _sm4_round_keys(key, gm_sm4.SM4_ENCRYPT)
        previous, blocks = iv, []
        for start in range(0, len(padded), SM4_BLOCK_SIZE):
            previous = bytes(cipher.one_round(cipher.sk, list(_xor(padded[start : start + SM4_BLOCK_SIZE], previous))))
            blocks.append(previous)
        return b"".join(blocks)

    def _sm4_cbc_decrypt(self, key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
        cipher = _sm4_round_keys(key, gm_sm4.SM4_DECRYPT)
        previous, blocks = iv, []
        for start in range(0, len(ciphertext), SM4_BLOCK_SIZE):
            block = ciphertext[start : start + SM4_BLOCK_SIZE]
            blocks.append(_xor(bytes(cipher.one_round(cipher.sk, list(block))), previous))
            previous = block
        return b"".join(blocks)
