"""Reference provider: gmssl, pure Python. Slow; used to cross-check the C-backed provider."""

from __future__ import annotations

import secrets

from asn1crypto import algos, keys, pem
from gmssl import sm2, sm4
from gmssl import sm3 as gmssl_sm3

from app.crypto import asn1 as sm_oids
from app.crypto.base import SM4_BLOCK_SIZE, Provider
from app.errors import CryptoError

_ORDER = int(sm2.default_ecc_table["n"], 16)
_HMAC_BLOCK_SIZE = 64


def _der(pem_bytes: bytes) -> bytes:
    try:
        return pem.unarmor(pem_bytes)[2] if pem.detect(pem_bytes) else pem_bytes
    except ValueError as error:
        raise CryptoError("无法解析 SM2 密钥", code="BAD_KEY") from error


def _check_curve(algorithm: keys.PublicKeyAlgorithm) -> None:
    if algorithm["parameters"].chosen.dotted != sm_oids.SM2_CURVE_OID:
        raise CryptoError("不是 SM2 密钥", code="BAD_KEY")


def _private_scalar(private_key_pem: bytes) -> int:
    info = keys.PrivateKeyInfo.load(_der(private_key_pem))
    _check_curve(info["private_key_algorithm"])
    return int(info["private_key"].parsed["private_key"].native)


def _public_point_hex(public_key_pem: bytes) -> str:
    info = keys.PublicKeyInfo.load(_der(public_key_pem))
    _check_curve(info["algorithm"])
    point = info["public_key"].native
    if len(point) != 65 or point[0] != 4:
        raise CryptoError("SM2 公钥格式不正确", code="BAD_KEY")
    return point[1:].hex()


def _blocks(data: bytes) -> list[bytes]:
    return [data[i : i + SM4_BLOCK_SIZE] for i in range(0, len(data), SM4_BLOCK_SIZE)]


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


class GmsslProvider(Provider):
    name = "gmssl"

    def sm3(self, data: bytes) -> bytes:
        return bytes.fromhex(gmssl_sm3.sm3_hash(list(data)))

    def hmac_sm3(self, key: bytes, data: bytes) -> bytes:
        """RFC 2104 over SM3 (block size 64), built by hand: gmssl has no HMAC."""
        if len(key) > _HMAC_BLOCK_SIZE:
            key = self.sm3(key)
        key = key.ljust(_HMAC_BLOCK_SIZE, b"\x00")
        inner = self.sm3(bytes(b ^ 0x36 for b in key) + data)
        return self.sm3(bytes(b ^ 0x5C for b in key) + inner)

    def sm2_sign(self, private_key_pem: bytes, data: bytes) -> bytes:
        scalar = _private_scalar(private_key_pem)
        public_hex = self._public_point_of_private(private_key_pem)
        signer = sm2.CryptSM2(private_key=f"{scalar:064x}", public_key=public_hex)
        nonce = f"{secrets.randbelow(_ORDER - 1) + 1:064x}"  # gmssl's own nonce source is not a CSPRNG
        raw = signer.sign_with_sm3(data, nonce)
        r, s = int(raw[:64], 16), int(raw[64:], 16)
        return algos.DSASignature({"r": r, "s": s}).dump()

    def sm2_verify(self, public_key_pem: bytes, data: bytes, signature_der: bytes) -> bool:
        verifier = sm2.CryptSM2(private_key=None, public_key=_public_point_hex(public_key_pem))
        try:
            parsed = algos.DSASignature.load(signature_der)
            r, s = parsed["r"].native, parsed["s"].native
            if parsed.dump() != signature_der or not (0 < r < _ORDER and 0 < s < _ORDER):
                return False
            return bool(verifier.verify_with_sm3(f"{r:064x}{s:064x}", data))
        except (ValueError, TypeError):
            return False

    def _public_point_of_private(self, private_key_pem: bytes) -> str:
        point = keys.PrivateKeyInfo.load(_der(private_key_pem))["private_key"].parsed["public_key"].native
        if point is None or len(point) != 65:
            raise CryptoError("私钥中缺少公钥", code="BAD_KEY")
        return point[1:].hex()

    def _cipher(self, key: bytes, mode: int) -> sm4.CryptSM4:
        cipher = sm4.CryptSM4()
        cipher.set_key(key, mode)
        return cipher

    def sm4_encrypt_block(self, key: bytes, block: bytes) -> bytes:
        if len(block) != SM4_BLOCK_SIZE:
            raise CryptoError("SM4 分组长度必须为 16 字节", code="INVALID_BLOCK")
        cipher = self._cipher(key, sm4.SM4_ENCRYPT)
        return bytes(cipher.one_round(cipher.sk, list(block)))

    def _sm4_cbc_encrypt(self, key: bytes, iv: bytes, padded: bytes) -> bytes:
        cipher = self._cipher(key, sm4.SM4_ENCRYPT)
        previous, out = iv, []
        for block in _blocks(padded):
            previous = bytes(cipher.one_round(cipher.sk, list(_xor(block, previous))))
            out.append(previous)
        return b"".join(out)

    def _sm4_cbc_decrypt(self, key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
        cipher = self._cipher(key, sm4.SM4_DECRYPT)
        previous, out = iv, []
        for block in _blocks(ciphertext):
            out.append(_xor(bytes(cipher.one_round(cipher.sk, list(block))), previous))
            previous = block
        return b"".join(out)
