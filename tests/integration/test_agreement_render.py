"""Agreement template -> HTML preview -> PDF with embedded, subset CJK fonts (checked with poppler-utils)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.domain.agreement import AgreementData, Party, agreement_context
from app.pdf import fonts
from app.pdf.render import ensure_harfbuzz_subset, html_to_pdf, render_agreement_html
from app.platform.errors import ConfigError

PRICE_UPPER = "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分"
DATA = AgreementData(
    agreement_no="BJ-2026-000123",
    city_name="北京",
    product_name="二手房交易资金存管",
    bank_name="中国光大银行",
    buyer=Party("张三", "110101199003071234", "中国工商银行", "6222021234567890123"),
    seller=Party("李四", "11010519851212567X", "中国建设银行", "6217001234567890"),
    property_address="北京市朝阳区建国路88号院3号楼12层1201",
    certificate_no="京(2020)朝阳区不动产权第0012345号",
    price_fen=123456789,
    custody_amount_fen=50000000,
    created_at=datetime(2026, 11, 23, 17, 0, tzinfo=UTC),
    account_no=None,
    deadlines={"funding_deadline": "3个工作日", "acceptance_window": "7天"},  # as agreement_data gives them
)


def _render(context: dict[str, Any]) -> str:
    return render_agreement_html("resale_escrow", "v1", context)


def _poppler(tool: str, pdf_path: Path, *args: str) -> str:
    """Run a poppler-utils tool on the PDF; `args` go after the file name (pdftotext writes to "-", stdout)."""
    return subprocess.run([tool, str(pdf_path), *args], check=True, capture_output=True, text=True).stdout


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def html() -> str:
    return _render(agreement_context(DATA))


@pytest.fixture(scope="module")
def pdf_path(html: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agreement") / "agreement.pdf"
    path.write_bytes(html_to_pdf(html))
    return path


def test_html_has_figures_uppercase_and_pending_account(html: str) -> None:
    assert "¥1,234,567.89" in html
    assert f'（大写：<span class="upper">{PRICE_UPPER}</span>）' in html
    assert "¥500,000.00" in html
    assert "伍拾万元整" in html
    assert "待银行开立" in html
    assert "110***********1234" in html
    assert "2026年11月24日" in html


def test_html_is_self_contained_and_shares_clauses(html: str) -> None:
    assert re.search(r"<style>.*@page.*</style>", html, re.DOTALL)
    assert '"Noto Serif CJK SC"' in html
    assert "<link" not in html
    assert "第八条　保密与个人信息保护" in html
    assert "第九条　争议解决" in html


def test_values_are_escaped() -> None:
    context = agreement_context(DATA)
    context["buyer"] = {**context["buyer"], "name": "<b>王五</b>"}
    html = _render(context)
    assert "&lt;b&gt;王五&lt;/b&gt;" in html
    assert "<b>王五</b>" not in html


def test_missing_value_is_an_error_not_a_blank() -> None:
    context = agreement_context(DATA)
    del context["price"]
    with pytest.raises(ConfigError) as caught:
        _render(context)
    assert caught.value.code == "AGREEMENT_CONTEXT_INCOMPLETE"
    assert "price" in caught.value.details["error"]


def test_unknown_template_version_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        render_agreement_html("resale_escrow", "v999", agreement_context(DATA))
    assert caught.value.code == "AGREEMENT_TEMPLATE_NOT_FOUND"


def test_pdf_text(pdf_path: Path) -> None:
    assert pdf_path.read_bytes().startswith(b"%PDF-")
    text = _compact(_poppler("pdftotext", pdf_path, "-enc", "UTF-8", "-"))
    for expected in ("二手房交易资金存管协议", PRICE_UPPER, "张三", "李四", "存管平台", "中国光大银行", "待银行开立"):
        assert expected in text
    assert "协议编号：BJ-2026-000123" in text
    assert re.search(r"第1页共\d+页", text)


def test_pdf_embeds_subset_cjk_fonts(pdf_path: Path) -> None:
    rows = [line.split() for line in _poppler("pdffonts", pdf_path).splitlines()[2:]]
    cjk = [row for row in rows if "CJK" in row[0]]
    assert cjk
    for row in cjk:
        assert re.fullmatch(r"[A-Z]{6}\+Noto-(Sans|Serif)-CJK-SC(-Bold)?", row[0])
        emb, sub = row[-5], row[-4]
        assert (emb, sub) == ("yes", "yes")


def test_pdf_info(pdf_path: Path) -> None:
    info = dict(
        line.split(":", 1) for line in _poppler("pdfinfo", pdf_path, "-enc", "UTF-8").splitlines() if ":" in line
    )
    assert int(info["Pages"]) >= 1
    assert info["Title"].strip() == "二手房交易资金存管协议（BJ-2026-000123）"


def test_rendering_is_repeatable(pdf_path: Path, html: str, tmp_path: Path) -> None:
    again = tmp_path / "again.pdf"
    again.write_bytes(html_to_pdf(_render(agreement_context(DATA))))
    assert _poppler("pdftotext", again, "-enc", "UTF-8", "-") == _poppler("pdftotext", pdf_path, "-enc", "UTF-8", "-")


@pytest.fixture
def fresh_harfbuzz_check() -> Iterator[None]:
    fonts.harfbuzz_subset_problem.cache_clear()
    yield
    fonts.harfbuzz_subset_problem.cache_clear()


@pytest.mark.usefixtures("fresh_harfbuzz_check")
def test_harfbuzz_subset_is_available_here() -> None:
    ensure_harfbuzz_subset()


@pytest.mark.usefixtures("fresh_harfbuzz_check")
def test_missing_harfbuzz_subset_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "_load_library", lambda names: None)
    with pytest.raises(ConfigError) as caught:
        html_to_pdf("<p>x</p>")
    assert caught.value.code == "HARFBUZZ_SUBSET_MISSING"
    assert "libharfbuzz-subset0" in caught.value.message
    assert "请安装" in caught.value.message
    assert "Install the Debian package" in caught.value.message
