"""Agreements signed under the platform CA (issue 20): the signature carries the seal certificate and the root,
`flask agreement verify` names the chain up to the root, and a revoked, expired, not yet valid, foreign or
wrongly used certificate is refused with its reason in Chinese."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import cms, pem
from flask import Flask
from flask.testing import FlaskClient

from app.agreements.service import verify_agreement_pdf
from app.crypto.keys import ensure_keys
from app.crypto.openssl_provider import generate_sm2_private_key_pem, sm2_public_key_pem
from app.db.models import Agreement
from app.pdf.sign import sign_pdf
from app.pki.certificates import Usage
from app.pki.names import Organization, organization_subject, person_subject
from app.pki.store import issue_and_record
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import confirmed_deal
from tests.pdf_samples import text_pdf

CHAIN = ["存管平台电子签章", "存管平台根证书"]
WHEN = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _agreement_pdf(rt: Runtime) -> bytes:
    deal_id = confirmed_deal(rt)
    with rt.db.uow() as uow:
        return uow.session.query(Agreement).filter_by(deal_id=deal_id).one().pdf


def _own_keys(rt: Runtime, tmp_path: Path) -> Path:
    """A copy of the session's key folder (same root): what a test revokes or issues stays its own."""
    folder = tmp_path / "keys"
    shutil.copytree(rt.keys.folder, folder)
    return folder


@pytest.mark.usefixtures("users")
def test_the_signed_agreement_names_its_chain_and_a_revoked_seal_is_refused(
    app: Flask,
    rt: Runtime,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    login: Callable[[str], FlaskClient],
) -> None:
    pdf = _agreement_pdf(rt)
    (report,) = verify_agreement_pdf(rt, pdf)
    assert report.valid and report.certificate_chain == CHAIN and not report.revoked
    content = pdf[pdf.index(b"/Contents <") + 11 :]
    signed_data = cms.ContentInfo.load(bytes.fromhex(content[: content.index(b">")].decode()))["content"]
    carried = {choice.chosen.dump() for choice in signed_data["certificates"]}
    root_der = pem.unarmor((rt.keys.folder / "ca" / "root.cert.pem").read_bytes())[2]
    assert carried == {pem.unarmor(rt.keys.platform_certificate_pem)[2], root_der}, "seal certificate and root"

    path = tmp_path / "agreement.pdf"
    path.write_bytes(pdf)
    cli = app.test_cli_runner()
    shown = cli.invoke(args=["agreement", "verify", str(path)])
    assert shown.exit_code == 0, shown.output
    (signature,) = json.loads(shown.stdout)["signatures"]
    assert signature["certificate_chain"] == CHAIN and signature["certificate_serial"] == report.certificate_serial
    client = login("auditor")
    token = csrf_token(client.get("/agreements/verify").text)
    page = client.post(
        "/agreements/verify",
        data={"pdf": (BytesIO(pdf), "agreement.pdf"), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert page.status_code == 200 and "存管平台电子签章 → 存管平台根证书" in page.text
    assert report.certificate_serial in page.text

    keys = _own_keys(rt, tmp_path)  # revoke in a copy: the session's folder serves every other test
    monkeypatch.setattr(app.extensions["cunguan.config"], "keys_dir", keys)
    monkeypatch.setattr(rt, "keys", replace(rt.keys, folder=keys))
    revoked = cli.invoke(args=["ca", "revoke", report.certificate_serial or "", "--reason", "key_compromise"])
    assert revoked.exit_code == 0 and "已吊销证书" in revoked.output, revoked.output
    refused = cli.invoke(args=["agreement", "verify", str(path)])
    assert refused.exit_code == 1
    (signature,) = json.loads(refused.stdout)["signatures"]
    assert signature["revoked"] and not signature["certificate_valid"]
    assert "被吊销，原因：密钥泄露" in refused.stderr and report.certificate_serial in refused.stderr
    listed = cli.invoke(args=["ca", "list"])
    assert f"{report.certificate_serial}\t存管平台电子签章" in listed.output and "已吊销（密钥泄露）" in listed.output


def _signed_with(key: bytes, certificate: bytes, chain: list[bytes], at: datetime = WHEN) -> bytes:
    return sign_pdf(
        text_pdf(b"Escrow agreement"),
        key,
        certificate,
        signer_name="测试",
        reason="测试",
        location="北京",
        signing_time=at,
        chain=chain,
    )


def _errors(rt: Runtime, pdf: bytes) -> str:
    (report,) = verify_agreement_pdf(rt, pdf)
    assert report.intact and report.signature_valid and not report.valid
    return "；".join(report.errors)


def test_expired_not_yet_valid_and_wrongly_used_certificates_of_our_ca_are_refused(rt: Runtime, tmp_path: Path) -> None:
    keys = _own_keys(rt, tmp_path)
    key = generate_sm2_private_key_pem()
    root = [(keys / "ca" / "root.cert.pem").read_bytes()]

    def issued(usage: Usage, start: datetime, days: int) -> bytes:
        subject = person_subject("张三", "11010519491231002X")
        until = start + timedelta(days=days)
        return issue_and_record(
            keys, sm2_public_key_pem(key), subject, usage=usage, valid_from=start, valid_until=until
        )

    month = issued(Usage.PERSONAL, WHEN - timedelta(days=10), 30)
    (fine,) = verify_agreement_pdf(rt, _signed_with(key, month, root))
    assert fine.valid and fine.certificate_chain == ["张三", "存管平台根证书"], fine.errors
    assert "已过期" in _errors(rt, _signed_with(key, month, root, WHEN + timedelta(days=30)))
    assert "尚未生效" in _errors(rt, _signed_with(key, month, root, WHEN - timedelta(days=11)))
    timestamping = issued(Usage.TSA, WHEN - timedelta(days=1), 30)
    assert "证书用途错误" in _errors(rt, _signed_with(key, timestamping, root))


def test_a_certificate_of_another_ca_is_refused_even_with_its_root_carried_along(rt: Runtime, tmp_path: Path) -> None:
    other = tmp_path / "other-keys"
    ensure_keys(other, WHEN - timedelta(days=1))  # another platform: same names, its own root
    key, seal = (other / "platform.key.pem").read_bytes(), (other / "platform.cert.pem").read_bytes()
    errors = _errors(rt, _signed_with(key, seal, [(other / "ca" / "root.cert.pem").read_bytes()]))
    assert "不在受信任的根证书之列" in errors
    assert "证书签发者未知或证书链断裂" in _errors(rt, _signed_with(key, seal, []))
    bank = Organization("某银行股份有限公司", "91110000MA01000004")
    assert organization_subject(bank).native["common_name"] == "某银行股份有限公司"
