"""A deal's agreement end to end: reproducible from (template, pinned city config, deal data), the preview's text
is the PDF's text, the bank countersigns later, and `flask agreement verify` / /agreements/verify report it."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.agreements.countersign import COUNTERSIGN_JOB
from app.agreements.service import render_html, verify_agreement_pdf
from app.crypto import sm3
from app.db.audit_models import AuditEntry
from app.db.models import Agreement, Deal, Job
from app.domain.agreement import AgreementData, Party, agreement_context
from app.domain.cities import build_city, folder_reader, resolve
from app.pdf.render import html_to_pdf, render_agreement_html
from app.pdf.sign import sign_digest
from app.pdf.verify import verify_pdf_signatures
from app.platform.runtime import Runtime
from app.products.loader import repository_products
from app.queue.worker import run_one
from tests.conftest import csrf_token
from tests.factories import confirmed_deal, load_deal
from tests.integration.simulator_support import bank_over_http

MM = 72 / 25.4
# the body area of an A4 page (margins 24 mm top, 22 mm bottom): without the running header and footer
BODY_CROP = ["-x", "0", "-y", str(round(24 * MM) + 1), "-W", "595", "-H", str(round(842 - 46 * MM) - 2)]
CITIES = Path(__file__).resolve().parents[2] / "city_configs"


class _Text(HTMLParser):
    """The text a reader sees in the preview: everything but <head> and the seal's drawing."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in ("head", "svg")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in ("head", "svg")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return _compact("".join(parser.parts))


def pdf_text(pdf: bytes, tmp_path: Path, *options: str) -> str:
    path = tmp_path / f"text-{len(pdf)}.pdf"
    path.write_bytes(pdf)
    run = subprocess.run(["pdftotext", "-enc", "UTF-8", *options, str(path), "-"], capture_output=True, check=True)
    return _compact(run.stdout.decode())


def _signed_agreement(rt: Runtime) -> tuple[int, Agreement]:
    deal_id = confirmed_deal(rt)
    with rt.db.uow() as uow:
        agreement = uow.session.query(Agreement).filter_by(deal_id=deal_id).one()
        uow.session.expunge(agreement)
    return deal_id, agreement


def _rerender(rt: Runtime, deal_id: int) -> str:
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, deal_id)
        assert deal is not None
        return render_html(rt, deal)


@pytest.mark.usefixtures("users")
def test_signed_agreement_is_reproducible_and_preview_text_is_pdf_text(rt: Runtime, tmp_path: Path) -> None:
    deal_id, agreement = _signed_agreement(rt)
    again = _rerender(rt, deal_id)
    assert again == agreement.html, "same template version, pinned config and deal data give the same HTML"
    stored_text = pdf_text(agreement.pdf, tmp_path)
    assert stored_text == pdf_text(html_to_pdf(again), tmp_path)
    assert "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分" in stored_text and "11010519491231002X" not in stored_text
    assert "110***********002X" in stored_text, "ID numbers masked as the template shows them"
    assert html_text(agreement.html) == pdf_text(agreement.pdf, tmp_path, "-raw", *BODY_CROP)
    assert re.search(r"第1页共(\d+)页", stored_text), "page numbers in the footer"


def _run_jobs(rt: Runtime) -> None:
    while run_one(rt, "test-worker"):
        pass


def _countersign_jobs(rt: Runtime) -> list[Job]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(Job).where(Job.kind == COUNTERSIGN_JOB).order_by(Job.id)))


@pytest.mark.usefixtures("users")
def test_the_bank_countersigns_over_the_protocol_keeping_the_platform_signature(
    app: Flask, rt: Runtime, keys_dir: Path, tmp_path: Path
) -> None:
    deal_id, platform_signed = _signed_agreement(rt)
    (job,) = _countersign_jobs(rt)
    assert job.status == "pending", "the platform's signing queued the bank's"
    _run_jobs(rt)  # the bank cannot be reached (nothing listens at its address): asked again later
    (job,) = _countersign_jobs(rt)
    assert job.status == "pending" and job.attempts == 1 and "暂时无法签章" in (job.last_error or "")
    assert load_deal(rt, deal_id).agreement.pdf == platform_signed.pdf  # type: ignore[union-attr]

    with bank_over_http(rt, keys_dir, tmp_path):
        with rt.db.uow() as uow:
            uow.session.get(Job, job.id).run_after = rt.clock()  # type: ignore[union-attr]
            uow.commit()
        _run_jobs(rt)
    (job,) = _countersign_jobs(rt)
    assert job.status == "done"
    countersigned = load_deal(rt, deal_id).agreement.pdf  # type: ignore[union-attr]
    assert countersigned.startswith(platform_signed.pdf), "an incremental update"
    first, second = verify_agreement_pdf(rt, countersigned)
    assert first.signer_subject == "存管平台电子签章" and second.signer_subject == "存管银行电子签章（ceb）"
    assert first.valid and second.valid
    assert not first.covers_whole_file and first.revision_intact and first.changes_after_signing == []
    assert second.covers_whole_file
    assert pdf_text(countersigned, tmp_path) == pdf_text(platform_signed.pdf, tmp_path), "text unchanged"
    with rt.db.uow() as uow:
        (entry,) = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "agreement.bank_signed"))
        assert entry.actor == "bank:ceb" and entry.after == {"pdf_sm3": sm3(countersigned).hex()}

    path = tmp_path / "countersigned.pdf"
    path.write_bytes(countersigned)
    result = app.test_cli_runner().invoke(args=["agreement", "verify", str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "签章全部有效（共 2 个签名）" in result.stderr, "a Chinese verdict beside the JSON"
    assert report["valid"] is True and len(report["signatures"]) == 2
    assert [s["covers_whole_file"] for s in report["signatures"]] == [False, True]
    for signature in report["signatures"]:
        assert signature["digest_matches"] and signature["signature_verifies"] and signature["signing_time"]

    at = countersigned.index(b"/Type /Page") + 2  # a byte of the first revision
    path.write_bytes(countersigned[:at] + b"X" + countersigned[at + 1 :])
    result = app.test_cli_runner().invoke(args=["agreement", "verify", str(path)])
    assert result.exit_code == 1
    assert [s["digest_matches"] for s in json.loads(result.stdout)["signatures"]] == [False, False]
    assert "签章无效" in result.stderr


@pytest.mark.usefixtures("users")
def test_a_signature_the_banks_certificate_does_not_verify_is_not_kept(
    rt: Runtime, keys_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bank answer signed with another key (here the platform's seal) is refused and asked again later."""
    deal_id, platform_signed = _signed_agreement(rt)
    platform_seal = (rt.keys.platform_private_key_pem, rt.keys.platform_certificate_pem)

    class WrongSeal:
        def request_signature(self, request_id: str, document_sm3: bytes, purpose: str) -> bytes:
            return sign_digest(document_sm3, *platform_seal, datetime.now(UTC))

    monkeypatch.setattr(rt, "gateway", lambda code: WrongSeal())
    _run_jobs(rt)
    (job,) = _countersign_jobs(rt)
    assert job.status == "pending" and "无法用其证书验证" in (job.last_error or "")
    assert load_deal(rt, deal_id).agreement.pdf == platform_signed.pdf  # type: ignore[union-attr]


def test_verify_page_for_any_logged_in_role(rt: Runtime, login: Callable[[str], FlaskClient], tmp_path: Path) -> None:
    _, agreement = _signed_agreement(rt)
    client = login("auditor")
    page = client.get("/agreements/verify")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    assert 'href="/agreements/verify"' in page.text, "linked from the navigation"
    token = csrf_token(page.text)

    def upload(content: bytes, name: str = "agreement.pdf", token: str | None = token) -> tuple[int, str]:
        data = {"pdf": (BytesIO(content), name)} | ({"csrf_token": token} if token else {})
        answer = client.post("/agreements/verify", data=data, content_type="multipart/form-data")
        return answer.status_code, answer.text

    status, text = upload(agreement.pdf)
    assert status == 200 and "全部 1 个签章有效" in text and "存管平台电子签章" in text
    at = agreement.pdf.index(b"/Type /Page") + 2
    status, text = upload(agreement.pdf[:at] + b"X" + agreement.pdf[at + 1 :])
    assert status == 200 and "签章验证未通过" in text and "文件被篡改" in text
    assert upload(b"hello", "x.pdf")[0] == 400
    assert upload(agreement.pdf, token=None)[0] == 400, "CSRF token required"
    assert upload(b"%PDF-" + b"0" * (8 * 1024 * 1024 + 10))[0] == 413
    login("agent")
    assert client.get("/agreements/verify").status_code == 200


def _city_product(code: str, product: str):  # type: ignore[no-untyped-def] - ProductConfig
    return build_city(resolve(code, folder_reader(CITIES)).data).products[product]


DATA = AgreementData(
    agreement_no="GE3301002026112300001",
    city_name="杭州",
    product_name="存量房交易资金监管",
    bank_name="中国工商银行",
    buyer=Party("王五", "11010519491231002X", "中国工商银行", "6222020200112233445"),
    seller=Party("赵六", "110101198001010053", "中国农业银行", "6228480012345678"),
    property_address="杭州市西湖区文三路1号",
    certificate_no="浙(2024)杭州市不动产权第0001234号",
    price_fen=300_000_000,
    custody_amount_fen=100_000_000,
    created_at=datetime(2026, 11, 23, tzinfo=UTC),
    account_no=None,
    deadlines={"funding_deadline": "10天", "acceptance_window": "7天"},
)


def test_city_config_picks_the_clauses() -> None:
    hangzhou = _city_product("330100", "gov_escrow")
    assert "gov_supervision" in hangzhou.clauses
    data = replace(DATA, clauses=hangzhou.clauses, authority=hangzhou.authority)
    html = render_agreement_html("gov_escrow", "v1", agreement_context(data))
    assert "第二条　政府资金监管" in html and "纳入杭州市住房保障和房产管理局存量房交易资金监管" in html
    assert "<svg" in html and "丙方（存管平台）" in html, "signature block with the seal"
    beijing = _city_product("110000", "resale_escrow")
    resale = render_agreement_html("resale_escrow", "v1", agreement_context(replace(DATA, clauses=beijing.clauses)))
    assert "政府资金监管" not in resale and "第八条　保密与个人信息保护" in resale and "第十条　其他" in resale
    chosen = render_agreement_html(
        "resale_escrow", "v1", agreement_context(replace(DATA, clauses=("gov_supervision", "dispute")))
    )
    assert "第八条　政府资金监管" in chosen and "第九条　争议解决" in chosen and "第十条　其他" in chosen
    assert "保密与个人信息保护" not in chosen


def test_every_product_template_renders_with_seal_page(tmp_path: Path) -> None:
    products = sorted(p.parent.name for p in (CITIES.parent / "agreement_templates").glob("*/v1"))
    registry = repository_products()
    assert products == sorted(registry.get(code).template_folder for code in registry.codes()), "one per product"
    for product in products:
        context = agreement_context(replace(DATA, clauses=("confidentiality", "dispute")))
        context["stages"] = [{"label": "水电验收"}, {"label": "竣工验收"}]
        html = render_agreement_html(product, "v1", context)
        assert "签订日期：2026年11月23日" in html and 'class="seal"' in html, product
    pdf = html_to_pdf(html)
    assert verify_pdf_signatures(pdf)[0].signed is False
    assert "第1页共" in pdf_text(pdf, tmp_path)
