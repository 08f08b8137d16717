"""Trusted time end to end, with the TSA as its own process (one per module): the HTTP protocol, OpenSSL reading
our replies, signatures carrying a signatureTimeStampToken, the verifier reporting the trusted time and catching a
forged, misplaced or missing timestamp, and a deal's agreement stamped on the platform's and the bank's signature."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
import requests
from asn1crypto import cms, pem, x509
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.agreements.countersign import COUNTERSIGN_JOB
from app.agreements.service import verify_agreement_pdf
from app.crypto import sm3
from app.crypto.keys import generate_sm2_private_key_pem
from app.db.models import Job
from app.pdf.dss import validation_data, validation_data_extension
from app.pdf.sign import build_cms, prepare_signature, sign_pdf, timestamp_document
from app.pdf.timestamps import add_signature_timestamp
from app.pdf.verify import verify_pdf_signatures
from app.pki.store import root_certificate_path
from app.platform.runtime import Runtime
from app.queue.worker import run_one
from app.tools.banksim.keys import provision_simulated_banks
from app.tsa import protocol
from app.tsa.authority import Authority
from app.tsa.certify import certify_tsa
from app.tsa.cli import tsa_cli
from app.tsa.client import TsaUnavailable, timestamp
from app.tsa.identity import TsaIdentity
from app.tsa.serials import SerialCounter
from app.tsa.tokens import check_token
from tests.conftest import csrf_token
from tests.factories import SEALS_VALID_FROM, confirmed_deal, load_deal
from tests.gmssl_interop import check_with_gmssl, signature_values
from tests.integration.simulator_support import bank_over_http
from tests.pdf_samples import text_pdf
from tests.ports import port_of, reserve_port
from tests.tsa_support import TsaProcess, running_tsa

WHEN = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca_keys(keys_dir: Path) -> Path:
    """The platform's keys (its CA: ca/root.cert.pem, ca/crl.pem), whose root certifies the TSA."""
    return keys_dir


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory, ca_keys: Path) -> Iterator[TsaProcess]:
    folder = tmp_path_factory.mktemp("tsa-home") / "tsa"
    certify_tsa(ca_keys, folder)  # as `flask tsa certify` does, before the process starts
    with running_tsa(folder) as running:
        yield running


@pytest.fixture(scope="module")
def seal(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, bytes]:
    """The platform's key, certificate and GB/T 38540 seal (a signature stamped now must carry it)."""
    folder = tmp_path_factory.mktemp("seal")
    provision_simulated_banks(folder, tmp_path_factory.mktemp("banks"), [], certificate_valid_from=SEALS_VALID_FROM)
    key, certificate = (folder / "platform.key.pem").read_bytes(), (folder / "platform.cert.pem").read_bytes()
    return key, certificate, (folder / "platform.seal.der").read_bytes()


def _stamper(tsa: TsaProcess):  # type: ignore[no-untyped-def] - a Timestamper
    return lambda digest: timestamp(tsa.url, digest, timeout_s=5)


def _post(tsa: TsaProcess, body: bytes, content_type: str = protocol.QUERY_CONTENT_TYPE) -> requests.Response:
    return requests.post(tsa.url, data=body, headers={"Content-Type": content_type}, timeout=5)


def test_the_client_gets_a_checked_token_from_the_process(tsa: TsaProcess) -> None:
    first = timestamp(tsa.url, sm3(b"one"))
    second = timestamp(tsa.url, sm3(b"two"))
    checks = [check_token(first, b"one", [pem.unarmor(tsa.certificate_pem)[2]]), check_token(second, b"two")]
    assert all(check.valid for check in checks), [check.errors for check in checks]
    assert checks[0].serial is not None and checks[1].serial is not None and checks[0].serial < checks[1].serial
    assert checks[0].authority == "存管平台时间戳服务"
    assert abs((checks[1].gen_time - datetime.now(UTC)).total_seconds()) < 60  # type: ignore[operator]


def test_the_http_side(tsa: TsaProcess) -> None:
    assert requests.get(f"{tsa.url}certificate", timeout=5).content == tsa.certificate_pem
    assert _post(tsa, protocol.build_request(sm3(b"x")), "application/octet-stream").status_code == 415
    assert _post(tsa, b"\0" * 20_000).status_code == 413
    refused = _post(tsa, b"not der")
    assert refused.status_code == 200 and refused.headers["Content-Type"] == protocol.REPLY_CONTENT_TYPE
    assert protocol.read_reply(refused.content)[0] == "rejection"


def test_tsa_stamp_writes_a_token_for_a_file(tsa: TsaProcess, tmp_path: Path) -> None:
    (tmp_path / "contract.txt").write_bytes(b"contract")
    arguments = ["stamp", str(tmp_path / "contract.txt"), "-o", str(tmp_path / "contract.tst"), "--url", tsa.url]
    result = CliRunner().invoke(tsa_cli, arguments)
    assert result.exit_code == 0 and "时间戳令牌已写入" in result.output, result.output
    assert check_token((tmp_path / "contract.tst").read_bytes(), b"contract").valid


def test_an_unreachable_tsa_is_tried_again_then_reported() -> None:
    reservation = reserve_port()  # bound, never listening: connections are refused at once
    try:
        with pytest.raises(TsaUnavailable) as failed:
            timestamp(f"http://127.0.0.1:{port_of(reservation)}/", sm3(b"x"), retries=1, timeout_s=1)
    finally:
        reservation.close()
    assert failed.value.code == "TSA_UNAVAILABLE" and "时间戳服务无法访问" in failed.value.message


def _openssl(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *arguments], cwd=cwd, capture_output=True, text=True, check=False)


def test_openssl_reads_our_reply_and_checks_the_token_signature(tsa: TsaProcess, ca_keys: Path, tmp_path: Path) -> None:
    """OpenSSL 3.0's `ts -verify` and `cms -verify` verify SM2 without the default user id (GM/T 0009
    "1234567812345678") and so reject every standard SM2 CMS signature; what they do read is checked here, and the
    token's signature with `pkeyutl` given that id."""
    request = protocol.build_request(sm3(b"document"), nonce=0x5EED)
    (tmp_path / "req.tsq").write_bytes(request)
    (tmp_path / "resp.tsr").write_bytes(_post(tsa, request).content)
    (tmp_path / "tsa.pem").write_bytes(tsa.certificate_pem)
    (tmp_path / "root.pem").write_bytes(root_certificate_path(ca_keys).read_bytes())
    text = _openssl("ts", "-reply", "-in", "resp.tsr", "-text", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    for expected in ("Status: Granted.", "Hash Algorithm: sm3", "Nonce: 0x5EED", protocol.DEFAULT_POLICY_OID):
        assert expected in text.stdout
    assert sm3(b"document").hex()[:8] in text.stdout.replace(" ", "").replace("-", "")

    assert _openssl("ts", "-reply", "-in", "resp.tsr", "-token_out", "-out", "token.der", cwd=tmp_path).returncode == 0
    printed = _openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", "token.der", cwd=tmp_path).stdout
    assert "id-smime-ct-TSTInfo" in printed and "SM2-with-SM3" in printed and "sm3" in printed
    distid = ("-vfyopt", "distid:1234567812345678")  # GM/T 0009's default SM2 user id: OpenSSL 3.0 needs it told
    purpose = _openssl("verify", *distid, "-purpose", "timestampsign", "-CAfile", "root.pem", "tsa.pem", cwd=tmp_path)
    assert purpose.returncode == 0 and "tsa.pem: OK" in purpose.stdout, purpose.stderr

    signer = cms.ContentInfo.load((tmp_path / "token.der").read_bytes())["content"]["signer_infos"][0]
    (tmp_path / "attrs.der").write_bytes(b"\x31" + signer["signed_attrs"].dump()[1:])
    (tmp_path / "sig.der").write_bytes(signer["signature"].native)
    certificate = _certificate(tsa.certificate_pem)
    (tmp_path / "pub.pem").write_bytes(pem.armor("PUBLIC KEY", certificate.public_key.dump()))
    verify = ["pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-digest", "sm3", "-in", "attrs.der"]
    verify += ["-sigfile", "sig.der", "-pkeyopt", "distid:1234567812345678"]
    checked = _openssl(*verify, cwd=tmp_path)
    assert checked.returncode == 0 and "Signature Verified Successfully" in checked.stdout, checked.stderr
    (tmp_path / "attrs.der").write_bytes(b"\x31" + signer["signed_attrs"].dump()[1:-1] + b"\0")
    assert _openssl(*verify, cwd=tmp_path).returncode != 0, "a changed byte fails OpenSSL's check too"


def _signed(seal: tuple[bytes, bytes, bytes], timestamper=None) -> bytes:  # type: ignore[no-untyped-def]
    document = text_pdf(b"Pay 1000 yuan")
    key, certificate, ses_seal = seal
    return sign_pdf(
        document,
        key,
        certificate,
        signer_name="x",
        reason="x",
        location="x",
        signing_time=WHEN,
        timestamper=timestamper,
        seal=ses_seal,
    )


def test_a_signature_carries_the_trusted_time(tsa: TsaProcess, seal: tuple[bytes, bytes, bytes]) -> None:
    (report,) = verify_pdf_signatures(_signed(seal, _stamper(tsa)), trusted_tsa=[tsa.certificate_pem])
    assert report.valid, report.errors
    assert report.timestamp is not None and report.timestamp.valid
    assert report.timestamp.authority == "存管平台时间戳服务" and report.timestamp.gen_time is not None
    assert report.as_dict()["trusted_time"]["authority"] == "存管平台时间戳服务"
    (unstamped,) = verify_pdf_signatures(_signed(seal))
    assert unstamped.valid and unstamped.timestamp is None, "without a TSA, signing works as before"
    assert "未附可信时间戳" in unstamped.as_dict()["trusted_time_note"]
    (required,) = verify_pdf_signatures(_signed(seal), require_timestamp=True)
    assert not required.valid and "时间戳：签名没有可信时间戳（缺失）" in required.errors


def _with_token(seal: tuple[bytes, bytes, bytes], token: bytes) -> bytes:
    """A signed PDF whose signature carries `token` as its timestamp, whatever the token stamps."""
    prepared = prepare_signature(
        text_pdf(b"Pay 1000 yuan"), signer_name="x", reason="x", location="x", signing_time=WHEN
    )
    signature = build_cms(prepared.digest, seal[0], _certificate(seal[1]), WHEN)
    return prepared.embed(add_signature_timestamp(signature, lambda _digest: token))


def _certificate(certificate_pem: bytes) -> x509.Certificate:
    return x509.Certificate.load(pem.unarmor(certificate_pem)[2])


def test_a_forged_or_misplaced_timestamp_is_detected(
    tsa: TsaProcess, seal: tuple[bytes, bytes, bytes], tmp_path: Path
) -> None:
    misplaced = _with_token(seal, timestamp(tsa.url, sm3(b"some other signature")))
    (report,) = verify_pdf_signatures(misplaced)
    assert report.signature_valid and not report.valid, "the seal's signature is fine, its timestamp is not"
    assert any("消息摘要与所盖时间的内容不一致" in error for error in report.errors)

    # the TSA's genuine certificate in the token, signed with another key: a forger's TSA
    forger = Authority(TsaIdentity(generate_sm2_private_key_pem(), tsa.certificate_pem), SerialCounter(tmp_path))

    def forged_stamper(digest: bytes) -> bytes:
        _, _, token = protocol.read_reply(forger.respond(protocol.build_request(digest)))
        assert token is not None
        return token.dump()

    prepared = prepare_signature(
        text_pdf(b"Pay 1000 yuan"), signer_name="x", reason="x", location="x", signing_time=WHEN
    )
    signature = build_cms(prepared.digest, seal[0], _certificate(seal[1]), WHEN)
    (report,) = verify_pdf_signatures(prepared.embed(add_signature_timestamp(signature, forged_stamper)))
    assert not report.valid and "时间戳：时间戳签名验证失败（时间戳被伪造或篡改）" in report.errors
    (report,) = verify_pdf_signatures(_signed(seal, _stamper(tsa)), trusted_tsa=[seal[1]])
    assert not report.valid and any(e.startswith("时间戳：时间戳服务证书不受信任") for e in report.errors)


def _run_jobs(rt: Runtime) -> None:
    while run_one(rt, "test-worker"):
        pass


def test_a_deals_agreement_is_stamped_on_each_signature_and_closed_by_a_document_timestamp(
    app: Flask,
    rt: Runtime,
    tsa: TsaProcess,
    keys_dir: Path,
    tmp_path: Path,
    login: Callable[[str], FlaskClient],
    ca_keys: Path,
) -> None:
    rt.tsa_url, rt.tsa_certificate = tsa.url, root_certificate_path(ca_keys)  # trusted through the TSA's CA
    deal_id = confirmed_deal(rt)
    reservation = reserve_port()  # the TSA unreachable while the bank signs: the job is asked again later
    with bank_over_http(rt, keys_dir, tmp_path):
        rt.tsa_url = f"http://127.0.0.1:{port_of(reservation)}/"
        _run_jobs(rt)
        (job,) = _countersign_jobs(rt)
        assert job.status == "pending" and "时间戳服务暂时无法盖时间戳" in (job.last_error or "")
        rt.tsa_url = tsa.url
        with rt.db.uow() as uow:
            uow.session.get(Job, job.id).run_after = rt.clock()  # type: ignore[union-attr]
            uow.commit()
        _run_jobs(rt)
    reservation.close()
    assert _countersign_jobs(rt)[0].status == "done"
    pdf = load_deal(rt, deal_id).agreement.pdf  # type: ignore[union-attr]
    platform, bank, document = verify_agreement_pdf(rt, pdf, require_timestamp=True)
    assert platform.valid and bank.valid and document.valid, platform.errors + bank.errors + document.errors
    assert (platform.signer_subject, bank.signer_subject) == ("存管平台电子签章", "存管银行电子签章（ceb）")
    assert document.document_timestamp and document.covers_whole_file and not bank.covers_whole_file
    serials = {report.timestamp.serial for report in (platform, bank, document) if report.timestamp}
    assert len(serials) == 3
    certificates, crls = validation_data(pdf)  # for offline checks: the root, the seals, the CA's CRL, in /DSS
    assert pem.unarmor(root_certificate_path(ca_keys).read_bytes())[2] in certificates and len(crls) == 1
    assert pem.unarmor(rt.keys.platform_certificate_pem)[2] in certificates
    assert platform.timestamp.gen_time and bank.timestamp.gen_time and document.timestamp
    assert document.timestamp.gen_time >= bank.timestamp.gen_time >= platform.timestamp.gen_time
    gmssl = check_with_gmssl(pdf)  # every signature, token, certificate and CRL checked by GmSSL, not by us
    expected = {"signatures": 2, "signature timestamps": 2, "document timestamps": 1, "certificates": 4, "crls": 1}
    assert gmssl == expected | {"seals": 2}, "the platform's and the bank's GB/T 38540 seals too"
    at = pdf.index(b"stream", 1000) + 40  # inside the first revision's content, under every signature
    with pytest.raises(AssertionError, match="messageDigest"):
        check_with_gmssl(pdf[:at] + bytes([pdf[at] ^ 1]) + pdf[at + 1 :])
    at = pdf.index(signature_values(pdf)[1].hex().encode()) + 20  # the bank's SM2 signature, one hex digit changed
    with pytest.raises(AssertionError, match="GmSSL refuses the SM2 signature of 存管银行电子签章"):
        check_with_gmssl(pdf[:at] + (b"1" if pdf[at : at + 1] != b"1" else b"2") + pdf[at + 1 :])
    path = tmp_path / "agreement.pdf"
    path.write_bytes(pdf)
    result = app.test_cli_runner().invoke(args=["agreement", "verify", "--require-timestamp", str(path)])
    assert result.exit_code == 0, result.output
    signatures = json.loads(result.stdout)["signatures"]
    assert [s["kind"] for s in signatures] == ["signature", "signature", "document_timestamp"]
    assert [s["trusted_time"]["authority"] for s in signatures] == ["存管平台时间戳服务"] * 3
    assert all(s["trusted_time"]["valid"] for s in signatures)
    assert (
        "签章 1（存管平台电子签章，证书链 存管平台电子签章 → 存管平台根证书）：可信时间 " in result.stderr
        and "（北京时间，存管平台时间戳服务，序列号" in result.stderr
    )
    assert "签章 3（存管平台时间戳服务）：文档时间戳 " in result.stderr
    offline = ["agreement", "verify", "--require-timestamp", "--root", str(root_certificate_path(ca_keys)), str(path)]
    result = app.test_cli_runner().invoke(args=offline)  # the root alone, the CRL from the file's /DSS
    assert result.exit_code == 0, result.output
    (tmp_path / "other-root.pem").write_bytes(tsa.certificate_pem)  # not our root
    result = app.test_cli_runner().invoke(args=[*offline[:4], str(tmp_path / "other-root.pem"), str(path)])
    assert result.exit_code == 1 and "不在受信任的根证书之列" in result.stderr

    client = login("auditor")
    data = {"pdf": (BytesIO(pdf), "agreement.pdf"), "csrf_token": csrf_token(client.get("/agreements/verify").text)}
    page = client.post("/agreements/verify", data=data, content_type="multipart/form-data").text
    assert "全部 3 个签章有效" in page and page.count("（存管平台时间戳服务，序列号") == 3
    assert page.count("✔ 签署后未被修改") == 3, "each signature says the file is unchanged since"


def _countersign_jobs(rt: Runtime) -> list[Job]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(Job).where(Job.kind == COUNTERSIGN_JOB).order_by(Job.id)))


def test_a_document_timestamp_covers_the_file_and_any_change_shows(
    tsa: TsaProcess, seal: tuple[bytes, bytes, bytes]
) -> None:
    signed = _signed(seal, _stamper(tsa))
    stamped = timestamp_document(signed, _stamper(tsa))
    assert stamped.startswith(signed), "an incremental update"
    signature, document = verify_pdf_signatures(stamped, trusted_tsa=[tsa.certificate_pem])
    assert signature.valid and signature.superseded_cleanly and document.valid and document.covers_whole_file
    assert document.as_dict()["kind"] == "document_timestamp" and document.signer_subject == "存管平台时间戳服务"
    at = stamped.index(b"Pay 1000 yuan")
    changed = stamped[: at + 2] + b"x" + stamped[at + 3 :]  # "Pax 1000 yuan"
    signature, document = verify_pdf_signatures(changed)
    assert not document.valid and any(
        "文档时间戳：时间戳的消息摘要与所盖时间的内容不一致" in e for e in document.errors
    )
    assert not signature.valid
    (_, forged) = verify_pdf_signatures(timestamp_document(signed, _stamper(tsa)), trusted_tsa=[seal[1]])
    assert not forged.valid and any(e.startswith("文档时间戳：时间戳服务证书不受信任") for e in forged.errors)


def test_validation_data_goes_into_the_dss_with_the_document_timestamp(
    tsa: TsaProcess, seal: tuple[bytes, bytes, bytes]
) -> None:
    signed = _signed(seal, _stamper(tsa))
    certificates = [pem.unarmor(tsa.certificate_pem)[2], pem.unarmor(seal[1])[2]]
    stamped = timestamp_document(signed, _stamper(tsa), validation_data_extension(certificates, [b"0\x03\x02\x01\x01"]))
    assert validation_data(signed) == ([], []) and validation_data(stamped) == (certificates, [b"0\x03\x02\x01\x01"])
    extension = validation_data_extension(certificates[:1], [b"0\x03\x02\x01\x02"])
    again = timestamp_document(stamped, _stamper(tsa), extension)
    assert validation_data(again) == (certificates, [b"0\x03\x02\x01\x01", b"0\x03\x02\x01\x02"]), "kept, not twice"
    reports = verify_pdf_signatures(again)
    assert [report.valid for report in reports] == [True, True, True], [report.errors for report in reports]
    assert [report.changes_after_signing for report in reports] == [[], [], []]
