"""The platform seal: keys and certificate that OpenSSL reads, SM2 signatures that OpenSSL verifies,
and the signature inside the PDF that detects any change."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import cms

from app.crypto import sm2_sign, sm2_verify, sm3
from app.crypto.keys import ensure_keys
from app.pdf.render import html_to_pdf
from app.pdf.sign import sign_pdf
from app.pdf.verify import verify_pdf

DISTID = "distid:1234567812345678"


def _openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=30)


def test_ensure_keys_is_idempotent_and_private_files_are_private(tmp_path: Path) -> None:
    ensure_keys(tmp_path, ["ceb", "icbc"])
    first = (tmp_path / "platform.key.pem").read_bytes()
    ensure_keys(tmp_path, ["ceb", "icbc"])
    assert (tmp_path / "platform.key.pem").read_bytes() == first, "never overwritten"
    for private in ("platform.key.pem", "banks/ceb.key.pem", "banks/icbc.key.pem", "pii.key"):
        assert (tmp_path / private).stat().st_mode & 0o077 == 0, private
    assert len(bytes.fromhex((tmp_path / "pii.key").read_text())) == 16


def test_openssl_reads_the_seal_certificate_and_checks_its_sm2_self_signature(keys_dir: Path) -> None:
    cert = keys_dir / "platform.cert.pem"
    text = _openssl("x509", "-in", str(cert), "-noout", "-text").stdout.decode()
    assert "SM2-with-SM3" in text and "ASN1 OID: SM2" in text
    verified = _openssl("verify", "-CAfile", str(cert), str(cert))
    assert verified.returncode == 0, verified.stderr


def test_openssl_verifies_our_signature_and_we_verify_openssls(keys_dir: Path, tmp_path: Path) -> None:
    message = "资金存管协议 RE1100002026112300001".encode()
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "sig").write_bytes(sm2_sign((keys_dir / "platform.key.pem").read_bytes(), message))
    common = ["-rawin", "-digest", "sm3", "-pkeyopt", DISTID, "-in", str(tmp_path / "msg")]
    public = str(keys_dir / "platform.pub.pem")
    ok = _openssl("pkeyutl", "-verify", "-pubin", "-inkey", public, *common, "-sigfile", str(tmp_path / "sig"))
    assert ok.returncode == 0 and b"Signature Verified Successfully" in ok.stdout, ok.stderr
    (tmp_path / "msg").write_bytes(message + b"!")
    bad = _openssl("pkeyutl", "-verify", "-pubin", "-inkey", public, *common, "-sigfile", str(tmp_path / "sig"))
    assert bad.returncode != 0

    (tmp_path / "msg").write_bytes(message)
    made = _openssl("pkeyutl", "-sign", "-inkey", str(keys_dir / "platform.key.pem"), *common)
    assert made.returncode == 0, made.stderr
    assert sm2_verify((keys_dir / "platform.pub.pem").read_bytes(), message, made.stdout)
    assert not sm2_verify((keys_dir / "banks" / "ceb.pub.pem").read_bytes(), message, made.stdout)


@pytest.fixture(scope="module")
def signed_pdf(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, Path]:
    keys = tmp_path_factory.mktemp("seal")
    ensure_keys(keys, [])
    original = html_to_pdf("<html><body><h1>资金存管协议</h1><p>存管金额：壹佰元整</p></body></html>")
    signed = sign_pdf(
        original,
        (keys / "platform.key.pem").read_bytes(),
        (keys / "platform.cert.pem").read_bytes(),
        signer_name="存管平台",
        reason="测试",
        location="北京",
        signing_time=datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
    )
    return original, signed, keys


def test_signature_is_inside_the_pdf_and_verifies(signed_pdf: tuple[bytes, bytes, Path], tmp_path: Path) -> None:
    original, signed, keys = signed_pdf
    assert signed.startswith(original), "an incremental update: the signed revision is untouched"
    report = verify_pdf(signed, (keys / "platform.cert.pem").read_bytes())
    assert report.valid, report.errors
    assert report.signer_subject == "存管平台电子签章"
    assert report.signing_time == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert (report.digest_algorithm, report.signature_algorithm) == ("1.2.156.10197.1.401", "1.2.156.10197.1.501")
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    assert "资金存管协议" in subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    poppler = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True)
    assert "Signature Field Name: Signature1" in poppler.stdout and "存管平台电子签章" in poppler.stdout
    assert "adbe.pkcs7.detached" in poppler.stdout


def test_cms_carries_sm3_digest_of_exactly_the_byte_ranges(signed_pdf: tuple[bytes, bytes, Path]) -> None:
    _, signed, _ = signed_pdf
    start = signed.rindex(b"/Contents <") + len(b"/Contents <")
    end = signed.index(b">", start)
    content = cms.ContentInfo.load(bytes.fromhex(signed[start:end].decode()).rstrip(b"\x00"))
    signer = content["content"]["signer_infos"][0]
    digest = next(a["values"][0].native for a in signer["signed_attrs"] if a["type"].native == "message_digest")
    assert digest == sm3(signed[: start - 1] + signed[end + 1 :])


def test_any_change_is_detected(signed_pdf: tuple[bytes, bytes, Path]) -> None:
    _, signed, keys = signed_pdf
    trusted = (keys / "platform.cert.pem").read_bytes()
    flipped = bytearray(signed)
    flipped[len(signed) // 3] ^= 0x01
    assert not verify_pdf(bytes(flipped), trusted).valid
    appended = verify_pdf(signed + b"\n% appended\n", trusted)
    assert appended.intact and not appended.covers_whole_file and not appended.valid
    at = signed.rindex(b"/Contents <") + 200
    forged_signature = signed[:at] + (b"1" if signed[at : at + 1] != b"1" else b"2") + signed[at + 1 :]
    assert not verify_pdf(forged_signature, trusted).valid
    other_keys = keys.parent / "other"
    ensure_keys(other_keys, [])
    untrusted = verify_pdf(signed, (other_keys / "platform.cert.pem").read_bytes())
    assert untrusted.signature_valid and not untrusted.trusted and not untrusted.valid


def test_unsigned_and_garbage_files_are_reported_not_raised(signed_pdf: tuple[bytes, bytes, Path]) -> None:
    original, _, _ = signed_pdf
    assert not verify_pdf(original).signed
    assert not verify_pdf(b"not a pdf at all").signed
    assert verify_pdf(b"not a pdf at all").errors
