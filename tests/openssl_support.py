"""OpenSSL's command line as the other implementation: its verdict on an SM2-with-SM3 signature."""

from __future__ import annotations

import subprocess
from pathlib import Path


def openssl(*arguments: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *arguments], capture_output=True, stdin=subprocess.DEVNULL, timeout=30)


def openssl_sm2_verifies(certificate_pem: bytes, data: bytes, signature_der: bytes, folder: Path) -> bool:
    """`openssl pkeyutl -verify -rawin -digest sm3` with GM/T 0009's default signer id (which OpenSSL 3.0 must be
    told) on `data` and `signature_der`, the public key taken from `certificate_pem` by `openssl x509`."""
    (folder / "signer.cert.pem").write_bytes(certificate_pem)
    public = openssl("x509", "-in", str(folder / "signer.cert.pem"), "-noout", "-pubkey")
    assert public.returncode == 0, public.stderr
    (folder / "signer.pub.pem").write_bytes(public.stdout)
    (folder / "signed.bin").write_bytes(data)
    (folder / "signature.der").write_bytes(signature_der)
    checked = openssl(
        *("pkeyutl", "-verify", "-pubin", "-inkey", str(folder / "signer.pub.pem"), "-rawin", "-digest", "sm3"),
        *("-pkeyopt", "distid:1234567812345678", "-sigfile", str(folder / "signature.der")),
        *("-in", str(folder / "signed.bin")),
    )
    return checked.returncode == 0 and b"Signature Verified Successfully" in checked.stdout
