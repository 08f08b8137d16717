"""Both SM providers against standard vectors, against each other and against the `openssl` command line."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
from pathlib import Path

import pytest
from asn1crypto import algos, pem, x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.crypto import get_provider, sm2_sign, sm2_verify, sm3, sm4_decrypt, sm4_encrypt
from app.crypto.base import Provider
from app.crypto.keys import (
    ensure_keys,
    generate_sm2_private_key_pem,
    import_bank_certificate,
    make_self_signed_certificate,
    public_key_pem_from_private,
)
from app.platform.errors import CryptoError, ValidationError
from app.tools.banksim.keys import provision_simulated_banks

PROVIDERS = ("openssl", "gmssl")
PAIRS = [(a, b) for a in PROVIDERS for b in PROVIDERS]
SM3_ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"  # GB/T 32905 example 1
SM3_ABCD_X16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"  # GB/T 32905 example 2
SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
SM4_CIPHERTEXT = "681edf34d206965e86b3e94f536e4246"  # GB/T 32907 example 1
SM2_ORDER = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
DISTID = "distid:1234567812345678"
# A throwaway test key whose public x coordinate starts with the byte 0x04 ("044c14..."): gmssl's
# CryptSM2(public_key=...) runs lstrip("04") on such a key and silently corrupts it.
KEY_WITH_X_STARTING_04 = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQgzINh+aiFuwsLpTPr
9lUa47jdkWkrcxNrSio2dEhQyZ2hRANCAAQETBQgvpVQ+Nt5adLsMCDW/bo72rkT
oAz2lxxffLPi4b4mInomPtIia7SyEJBGzXC1agSYc+8Id5Eb0xXgvFqI
-----END PRIVATE KEY-----
"""


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    private = generate_sm2_private_key_pem()
    return private, public_key_pem_from_private(private)


def _openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], capture_output=True, stdin=subprocess.DEVNULL, timeout=30)


def _der_sequence(*integers: bytes) -> bytes:
    """DER by hand, to build encodings asn1crypto would refuse to produce."""
    body = b"".join(b"\x02" + bytes([len(value)]) + value for value in integers)
    return b"\x30" + bytes([len(body)]) + body


@pytest.mark.parametrize("name", PROVIDERS)
def test_sm3_standard_vectors(name: str) -> None:
    provider = get_provider(name)
    assert provider.sm3(b"abc").hex() == SM3_ABC
    assert provider.sm3(b"abcd" * 16).hex() == SM3_ABCD_X16


@pytest.mark.parametrize("name", PROVIDERS)
def test_hmac_sm3_matches_the_standard_library(name: str) -> None:
    message = "存管账户 6222020200112233445".encode()
    for key in (b"k", bytes(range(64)), bytes(range(200))):  # shorter than, equal to and longer than a block
        assert get_provider(name).hmac_sm3(key, message) == hmac.new(key, message, "sm3").digest()


@pytest.mark.parametrize("name", PROVIDERS)
def test_sm4_standard_vector_on_the_raw_block(name: str) -> None:
    assert get_provider(name).sm4_encrypt_block(SM4_KEY, SM4_KEY).hex() == SM4_CIPHERTEXT


@pytest.mark.parametrize(("signer", "verifier"), PAIRS)
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
    assert not check.sm2_verify(public, message, b"")
    other = public_key_pem_from_private(generate_sm2_private_key_pem())
    assert not check.sm2_verify(other, message, signature)


@pytest.mark.parametrize(("signer", "verifier"), PAIRS)
def test_sm2_key_whose_x_starts_with_04(signer: str, verifier: str) -> None:
    public = public_key_pem_from_private(KEY_WITH_X_STARTING_04)
    signature = get_provider(signer).sm2_sign(KEY_WITH_X_STARTING_04, b"message")
    assert get_provider(verifier).sm2_verify(public, b"message", signature)


@pytest.mark.parametrize("name", PROVIDERS)
def test_sm2_rejects_out_of_range_and_non_canonical_signatures(name: str, key_pair: tuple[bytes, bytes]) -> None:
    private, public = key_pair
    provider = get_provider(name)
    parsed = algos.DSASignature.load(provider.sm2_sign(private, b"m"))
    r, s = parsed["r"].native, parsed["s"].native
    assert provider.sm2_verify(public, b"m", algos.DSASignature({"r": r, "s": s}).dump())
    for bad_r, bad_s in ((0, s), (r, 0), (r + SM2_ORDER, s), (r, s + SM2_ORDER)):
        assert not provider.sm2_verify(public, b"m", algos.DSASignature({"r": bad_r, "s": bad_s}).dump())
    padded_r = b"\x00\x00" + r.to_bytes(32, "big")  # a redundant leading zero is not DER
    assert not provider.sm2_verify(public, b"m", _der_sequence(padded_r, s.to_bytes(33, "big")))


def test_sm2_signatures_are_randomised(key_pair: tuple[bytes, bytes]) -> None:
    private, _ = key_pair
    for name in PROVIDERS:
        assert get_provider(name).sm2_sign(private, b"x") != get_provider(name).sm2_sign(private, b"x")


@pytest.mark.parametrize("name", PROVIDERS)
def test_openssl_cli_and_our_sm2_agree(name: str, key_pair: tuple[bytes, bytes], tmp_path: Path) -> None:
    private, public = key_pair
    provider = get_provider(name)
    message = "资金存管协议 RE1100002026112300001".encode()
    for file_name, content in (("key.pem", private), ("pub.pem", public), ("msg", message)):
        (tmp_path / file_name).write_bytes(content)
    (tmp_path / "ours.sig").write_bytes(provider.sm2_sign(private, message))
    common = ["-rawin", "-digest", "sm3", "-pkeyopt", DISTID, "-in", str(tmp_path / "msg")]
    verify = ["pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"), *common, "-sigfile"]
    checked = _openssl(*verify, str(tmp_path / "ours.sig"))
    assert checked.returncode == 0 and b"Signature Verified Successfully" in checked.stdout, checked.stderr

    made = _openssl("pkeyutl", "-sign", "-inkey", str(tmp_path / "key.pem"), *common)
    assert made.returncode == 0, made.stderr
    assert provider.sm2_verify(public, message, made.stdout)
    assert not provider.sm2_verify(public, message + b" ", made.stdout)

    (tmp_path / "msg").write_bytes(message + b" ")
    assert _openssl(*verify, str(tmp_path / "ours.sig")).returncode != 0


@pytest.mark.parametrize("name", PROVIDERS)
def test_sm2_refuses_keys_that_are_not_sm2(name: str, key_pair: tuple[bytes, bytes], tmp_path: Path) -> None:
    private, _ = key_pair
    p256 = ec.generate_private_key(ec.SECP256R1())
    p256_private = p256.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    p256_public = p256.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "key.pem").write_bytes(private)
    encrypted = _openssl("pkcs8", "-topk8", "-in", str(tmp_path / "key.pem"), "-passout", "pass:secret")
    assert encrypted.returncode == 0, encrypted.stderr
    provider = get_provider(name)
    for bad_private in (p256_private, b"not a key", encrypted.stdout):  # encrypted: refused, never prompts
        with pytest.raises(CryptoError) as caught:
            provider.sm2_sign(bad_private, b"m")
        assert caught.value.code == "INVALID_KEY"
    with pytest.raises(CryptoError) as caught:
        provider.sm2_verify(p256_public, b"m", provider.sm2_sign(private, b"m"))
    assert caught.value.code == "INVALID_KEY"


def test_openssl_provider_frees_what_it_allocates(key_pair: tuple[bytes, bytes]) -> None:
    """Resident memory stays flat over many calls; a single missed *_free per call shows as >= 100 KiB."""
    private, public = key_pair
    provider = get_provider("openssl")

    def resident_bytes() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def work(rounds: int) -> None:
        for _ in range(rounds):
            assert provider.sm2_verify(public, b"m", provider.sm2_sign(private, b"m"))

    work(100)
    before = resident_bytes()
    work(500)
    assert resident_bytes() - before < 64 * 1024


@pytest.mark.parametrize(("encrypter", "decrypter"), PAIRS)
@pytest.mark.parametrize("plaintext", [b"", b"110105194912310021", "中文".encode() * 40])
def test_sm4_tokens_round_trip_across_providers(encrypter: str, decrypter: str, plaintext: bytes) -> None:
    token = get_provider(encrypter).sm4_encrypt(SM4_KEY, plaintext)
    assert plaintext not in token or not plaintext
    assert get_provider(decrypter).sm4_decrypt(SM4_KEY, token) == plaintext


@pytest.mark.parametrize("name", PROVIDERS)
def test_sm4_token_layout(name: str) -> None:
    provider = get_provider(name)
    first, second = provider.sm4_encrypt(SM4_KEY, b"x" * 16), provider.sm4_encrypt(SM4_KEY, b"x" * 16)
    assert first[0] == 1, "version byte"
    assert len(first) == 1 + 16 + 32 + 32, "IV, two blocks (a full block of padding), HMAC-SM3 tag"
    assert first[1:17] != second[1:17], "a fresh random IV each time"


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
    for key, altered in ((bytes(16), token), (SM4_KEY, token[:20]), (SM4_KEY, token + bytes(16))):
        with pytest.raises(CryptoError) as caught:
            provider.sm4_decrypt(key, altered)
        assert caught.value.code == "DECRYPT_FAILED"
    with pytest.raises(CryptoError) as caught:
        provider.sm4_encrypt(b"short", b"x")
    assert caught.value.code == "INVALID_KEY"


def test_facade_uses_the_c_backed_provider(key_pair: tuple[bytes, bytes]) -> None:
    private, public = key_pair
    assert get_provider().name == "openssl"
    assert get_provider("gmssl").name == "gmssl"
    assert sm3(b"abc").hex() == SM3_ABC == hashlib.new("sm3", b"abc").hexdigest()
    assert sm4_decrypt(SM4_KEY, sm4_encrypt(SM4_KEY, b"abc")) == b"abc"
    assert sm2_verify(public, b"abc", sm2_sign(private, b"abc"))
    with pytest.raises(CryptoError) as caught:
        get_provider("nonexistent")
    assert caught.value.code == "UNKNOWN_PROVIDER"


def test_ensure_keys_creates_private_files_privately_never_overwrites_and_makes_no_bank_key(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    ensure_keys(folder)
    private = ["platform.key.pem", "pii.key", "audit-mac.key", "ca/root.key.pem"]
    public = ["platform.pub.pem", "platform.cert.pem", "platform.seal.der", "ca/root.cert.pem", "ca/crl.pem"]
    made = {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}
    assert set(private + public) <= made
    others = made - set(private + public)
    assert all((name.startswith("pii") and name.endswith(".key")) or name.startswith("ca/") for name in others), made
    assert list((folder / "banks").iterdir()) == [], "the banks' folder holds imported certificates only"
    for name in private:
        assert (folder / name).stat().st_mode & 0o777 == 0o600, name
    for directory in (folder, folder / "banks", folder / "ca"):
        assert directory.stat().st_mode & 0o777 == 0o700
    assert len(bytes.fromhex((folder / "pii.key").read_text())) == 16
    assert len(bytes.fromhex((folder / "audit-mac.key").read_text())) == 32, "the audit log's HMAC-SM3 key"

    before = {name: (folder / name).read_bytes() for name in private + public}
    (folder / "platform.cert.pem").unlink()
    ensure_keys(folder)
    for name in private + public:
        if name not in ("platform.cert.pem", "platform.seal.der"):  # the seal lists the certificate: made anew
            assert (folder / name).read_bytes() == before[name], f"{name} overwritten"
    assert (folder / "platform.seal.der").read_bytes() != before["platform.seal.der"]
    certificate = x509.Certificate.load(pem.unarmor((folder / "platform.cert.pem").read_bytes())[2])
    assert pem.armor("PUBLIC KEY", certificate.public_key.dump()) == before["platform.pub.pem"], "same key"


def test_simulated_banks_keep_their_keys_and_the_platform_imports_their_certificates(tmp_path: Path) -> None:
    platform, banks = tmp_path / "keys", tmp_path / "bank-sim-keys"
    provision_simulated_banks(platform, banks, ["ceb", "icbc"])
    assert banks.stat().st_mode & 0o777 == 0o700
    for code in ("ceb", "icbc"):
        bank_key = (banks / f"{code}.key.pem").read_bytes()
        assert (banks / f"{code}.key.pem").stat().st_mode & 0o777 == 0o600
        assert (platform / "banks" / f"{code}.pub.pem").read_bytes() == public_key_pem_from_private(bank_key)
        assert (platform / "banks" / f"{code}.cert.pem").read_bytes() == (banks / f"{code}.cert.pem").read_bytes()
    assert (banks / "platform.pub.pem").read_bytes() == (platform / "platform.pub.pem").read_bytes()
    assert sorted(path.name for path in platform.rglob("*.key.pem")) == ["platform.key.pem", "root.key.pem"]
    with pytest.raises(ValidationError) as refused:
        import_bank_certificate(platform, "ceb", (platform / "platform.pub.pem").read_bytes())
    assert refused.value.code == "INVALID_CERTIFICATE"


def test_openssl_reads_our_keys_and_certificate(key_pair: tuple[bytes, bytes], tmp_path: Path) -> None:
    private, public = key_pair
    (tmp_path / "key.pem").write_bytes(private)
    (tmp_path / "pub.pem").write_bytes(public)
    assert private.startswith(b"-----BEGIN PRIVATE KEY-----") and public.startswith(b"-----BEGIN PUBLIC KEY-----")
    key_text = _openssl("pkey", "-in", str(tmp_path / "key.pem"), "-noout", "-text")
    assert key_text.returncode == 0 and b"ASN1 OID: SM2" in key_text.stdout, key_text.stderr
    assert _openssl("pkey", "-pubin", "-in", str(tmp_path / "pub.pem"), "-noout").returncode == 0

    (tmp_path / "cert.pem").write_bytes(make_self_signed_certificate(private, "测试签章", "Cunguan", valid_days=30))
    text = _openssl("x509", "-in", str(tmp_path / "cert.pem"), "-noout", "-text", "-nameopt", "utf8")
    assert text.returncode == 0, text.stderr
    output = text.stdout.decode()
    assert "Version: 3" in output and output.count("Signature Algorithm: SM2-with-SM3") == 2
    assert "ASN1 OID: SM2" in output and "Subject: C=CN, O=Cunguan, CN=测试签章" in output
    verified = _openssl("verify", "-CAfile", str(tmp_path / "cert.pem"), str(tmp_path / "cert.pem"))
    assert verified.returncode == 0, verified.stderr


def test_certificates_past_2049_use_generalized_time(key_pair: tuple[bytes, bytes]) -> None:
    private, _ = key_pair
    short = x509.Certificate.load(pem.unarmor(make_self_signed_certificate(private, "a", "b", valid_days=30))[2])
    long = x509.Certificate.load(pem.unarmor(make_self_signed_certificate(private, "a", "b", valid_days=40000))[2])
    assert short["tbs_certificate"]["validity"]["not_after"].name == "utc_time"
    assert long["tbs_certificate"]["validity"]["not_after"].name == "general_time"
    assert short.serial_number > 0 and short.serial_number != long.serial_number
