"""GB/T 38540 seals on a deal's agreement: the platform's certification and the bank's countersignature (made by
the bank's own process over the protocol) each carry their seal, the verifier reports both, a seal swapped in from
another bank is refused, and `flask ca show-seal` / `issue-seal` / `agreement verify` say so in Chinese."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.agreements.countersign import COUNTERSIGN_JOB, bank_has_signed
from app.agreements.service import verify_agreement_pdf
from app.crypto.keys import bank_certificate_path, ensure_keys, make_self_signed_certificate
from app.crypto.openssl_provider import generate_sm2_private_key_pem
from app.db.models import Job
from app.pdf.sign import SEALED_SIGNATURE_SIZE, prepare_signature, sign_digest, sign_pdf
from app.pdf.verify import verify_pdf_signatures
from app.pki.certificates import load_certificate
from app.platform.runtime import Runtime
from app.queue.worker import run_one
from app.seals.issue import bank_seal_path, platform_seal_path
from app.seals.seal import read_seal
from app.tools.banksim.keys import PLATFORM_ROOT
from tests.conftest import csrf_token
from tests.factories import SEALS_VALID_FROM, bank_signing_key, confirmed_deal, load_deal, simulated_banks_folder
from tests.integration.simulator_support import bank_over_http
from tests.pdf_samples import text_pdf


def _countersigned(rt: Runtime, keys_dir: Path, tmp_path: Path) -> bytes:
    deal_id = confirmed_deal(rt)
    with bank_over_http(rt, keys_dir, tmp_path):
        while run_one(rt, "test-worker"):
            pass
    with rt.db.uow() as uow:
        jobs = uow.session.scalars(select(Job).where(Job.kind == COUNTERSIGN_JOB))
        assert [job.status for job in jobs] == ["done"]
    return load_deal(rt, deal_id).agreement.pdf  # type: ignore[union-attr]


@pytest.mark.usefixtures("users")
def test_the_final_agreement_carries_the_platforms_and_the_banks_seals(
    app: Flask, rt: Runtime, keys_dir: Path, tmp_path: Path, login: Callable[[str], FlaskClient]
) -> None:
    pdf = _countersigned(rt, keys_dir, tmp_path)
    platform, bank = verify_agreement_pdf(rt, pdf)
    assert platform.valid and bank.valid, (platform.errors, bank.errors)
    assert platform.seal is not None and bank.seal is not None
    assert platform.seal.name == "存管平台演示运营有限公司" and bank.seal.name == "中国光大银行（模拟）"
    assert platform.seal.es_id == read_seal(platform_seal_path(keys_dir).read_bytes()).es_id
    assert bank.seal.es_id == read_seal(bank_seal_path(keys_dir / "banks", "ceb").read_bytes()).es_id
    assert platform.seal.maker == bank.seal.maker == "存管平台根证书"

    path = tmp_path / "agreement.pdf"
    path.write_bytes(pdf)
    result = app.test_cli_runner().invoke(args=["agreement", "verify", str(path)])
    assert result.exit_code == 0, result.output
    seals = [signature["seal"] for signature in json.loads(result.stdout)["signatures"]]
    assert [seal["verdict"] for seal in seals] == ["电子印章有效", "电子印章有效"]
    assert seals[1]["name"] == "中国光大银行（模拟）" and seals[1]["type"] == "单位印章"
    assert seals[1]["issuer"] == "存管平台根证书" and seals[1]["valid_from"] and seals[1]["valid_until"]
    assert f"电子印章“中国光大银行（模拟）”（印章标识 {bank.seal.es_id}，" in result.stderr
    assert "制章者 存管平台根证书）有效" in result.stderr

    client = login("auditor")
    token = csrf_token(client.get("/agreements/verify").text)
    data = {"pdf": (BytesIO(pdf), "agreement.pdf"), "csrf_token": token}
    page = client.post("/agreements/verify", data=data, content_type="multipart/form-data").text
    assert "电子印章（GB/T 38540）" in page and "✔ 电子印章“存管平台演示运营有限公司”" in page
    assert "✔ 电子印章“中国光大银行（模拟）”" in page


@pytest.mark.usefixtures("users")
def test_a_seal_swapped_in_from_another_bank_is_refused(rt: Runtime, keys_dir: Path) -> None:
    """The bank signs with its own key and certificate but carries ICBC's seal: the seal's certList does not hold
    its certificate, so the countersignature is refused and the job would not keep it."""
    deal_id = confirmed_deal(rt)
    platform_signed = load_deal(rt, deal_id).agreement.pdf  # type: ignore[union-attr]
    prepared = prepare_signature(
        platform_signed,
        signer_name="ceb",
        reason="x",
        location="x",
        signing_time=rt.clock(),
        size=SEALED_SIGNATURE_SIZE,
    )
    banks = simulated_banks_folder(keys_dir)
    cms = sign_digest(
        prepared.digest,
        bank_signing_key(keys_dir, "ceb"),
        bank_certificate_path(keys_dir, "ceb").read_bytes(),
        rt.clock(),
        [(banks / PLATFORM_ROOT).read_bytes()],
        seal=bank_seal_path(banks, "icbc").read_bytes(),
    )
    swapped = prepared.embed(cms)
    _, bank = verify_agreement_pdf(rt, swapped)
    assert not bank.valid and bank.seal is not None and bank.seal.name == "中国工商银行（模拟）"
    assert "电子印章：电子印章的签章者证书列表中没有本签名的证书（印章不属于签名者）" in bank.errors
    assert bank.as_dict()["seal"]["verdict"] == "电子印章无效"
    assert not bank_has_signed(rt, "ceb", swapped), "the countersignature job does not keep it"

    unsealed = prepared.embed(
        sign_digest(
            prepared.digest,
            bank_signing_key(keys_dir, "ceb"),
            bank_certificate_path(keys_dir, "ceb").read_bytes(),
            rt.clock(),
        )
    )
    _, bank = verify_agreement_pdf(rt, unsealed)
    assert not bank.valid and "电子印章：机构签名缺少电子印章（GB/T 38540 SES_Seal）" in bank.errors


def test_show_seal_and_issue_seal_on_the_command_line(app: Flask, keys_dir: Path, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    shown = runner.invoke(args=["ca", "show-seal", str(bank_seal_path(keys_dir / "banks", "ceb"))])
    assert shown.exit_code == 0, shown.output
    assert "印章名称：中国光大银行（模拟）" in shown.output and "制章者签名：有效" in shown.output
    assert "制章者是否为本平台 CA：是" in shown.output and "签章者证书：存管银行电子签章（ceb）" in shown.output
    copy = tmp_path / "ceb.seal.der"
    issued = runner.invoke(args=["ca", "issue-seal", "--bank", "ceb", "--out", str(copy)])
    assert issued.exit_code == 0 and "已制作电子印章" in issued.output, issued.output
    assert read_seal(copy.read_bytes()).name == "中国光大银行（模拟）"
    garbage = tmp_path / "garbage.der"
    garbage.write_bytes(b"not a seal")
    refused = runner.invoke(args=["ca", "show-seal", str(garbage)])
    assert refused.exit_code != 0 and "无法解析电子印章" in refused.output


def test_issue_bank_makes_the_banks_seal_and_hands_over_a_copy(app: Flask, tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    ensure_keys(folder, SEALS_VALID_FROM)
    app.extensions["cunguan.config"].keys_dir = folder  # type: ignore[misc]
    bank_key = generate_sm2_private_key_pem()
    (tmp_path / "request.pem").write_bytes(make_self_signed_certificate(bank_key, "请求", "ceb"))
    certificate, seal_copy = tmp_path / "ceb.cert.pem", tmp_path / "ceb.seal.der"
    result = app.test_cli_runner().invoke(
        args=[
            *("ca", "issue-bank", "ceb", "--request", str(tmp_path / "request.pem")),
            *("--legal-name", "测试光大银行股份有限公司", "--uscc", "91110000MA01000004"),
            *("--out", str(certificate), "--seal-out", str(seal_copy)),
        ]
    )
    assert result.exit_code == 0 and "电子印章" in result.output, result.output
    seal = read_seal(seal_copy.read_bytes())
    assert seal.name == "测试光大银行股份有限公司" and seal.maker_name == "存管平台根证书"
    assert seal.signer_certificates == (load_certificate(certificate.read_bytes()).dump(),)
    assert bank_seal_path(folder / "banks", "ceb").read_bytes() == seal_copy.read_bytes(), "kept beside the certificate"


def test_the_seal_is_covered_by_the_signers_signature(tmp_path: Path) -> None:
    """A signed attribute: a byte of the seal changed inside the CMS breaks the signer's SM2 signature, and the
    seal's own maker signature with it."""
    ensure_keys(tmp_path, SEALS_VALID_FROM)
    key, certificate = (tmp_path / "platform.key.pem").read_bytes(), (tmp_path / "platform.cert.pem").read_bytes()
    seal, root = platform_seal_path(tmp_path).read_bytes(), (tmp_path / "ca" / "root.cert.pem").read_bytes()
    signed = sign_pdf(
        text_pdf(b"Pay 1000 yuan"),
        key,
        certificate,
        signer_name="x",
        reason="x",
        location="x",
        signing_time=datetime(2026, 12, 6, tzinfo=UTC),
        chain=[root],
        seal=seal,
    )
    (report,) = verify_pdf_signatures(signed, [root])
    assert report.valid and report.seal is not None and report.seal.name == "存管平台演示运营有限公司"
    at = signed.index(read_seal(seal).picture.data[100:116].hex().encode())
    tampered = signed[:at] + (b"1" if signed[at : at + 1] == b"0" else b"0") + signed[at + 1 :]
    (report,) = verify_pdf_signatures(tampered, [root])
    assert not report.valid and not report.signature_valid and "SM2 签名验证失败" in report.errors
    assert "电子印章：电子印章的制章者签名验证失败（印章被篡改或伪造）" in report.errors
