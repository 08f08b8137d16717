"""城市配置 · 预览 (app/cities/draft_preview.py, preview_view.py): the intake form and the agreement of a draft,
generated from the draft's content (not the published one): a field only the draft has is on the form, the
agreement carries the draft's fee, release plan and clause, the PDF is unsigned and watermarked 样本; a draft that
fails its checks is refused in Chinese (422); agents and auditors cannot open the previews."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.cities import publishing
from app.db.models import Deal
from app.platform.runtime import Runtime

Login = Callable[[str], FlaskClient]
CITY = "110000"
PREVIEW = f"/admin/configs/{CITY}/preview"


def _draft_document() -> dict[str, Any]:
    """北京 on the resale workflow v2 with a seller-paid fee, a 90/10 plan, a new clause and a 房屋面积 field."""
    document = json.loads(Path(f"city_configs/{CITY}.json").read_text(encoding="utf-8"))
    document["products"]["resale_escrow"] = {
        "banks": ["ceb"],
        "agreement": {"template": "resale_escrow/v2", "clauses": ["gov_supervision", "dispute"]},
        "fees": [{"name": "资金存管服务费", "payer": "seller", "kind": "rate", "bps": 30}],
        "release": {
            "conditions": ["title_transferred"],
            "tranches": [
                {"label": "首期房款", "share_bps": 9000, "event": "title_transferred"},
                {"label": "交割尾款", "remainder": True, "event": "handover_done"},
            ],
        },
        "form": {
            "sections": ["房屋信息"],
            "schema": {
                "required": ["house_area"],
                "properties": {
                    "house_area": {
                        "type": "number",
                        "title": "房屋建筑面积",
                        "x-section": "房屋信息",
                        "x-order": 1,
                        "minimum": 1,
                    }
                },
            },
        },
    }
    return document


def _save(rt: Runtime, document: dict[str, Any]) -> None:
    publishing.save_draft(rt, CITY, json.dumps(document, ensure_ascii=False, indent=2) + "\n", "ops")


@pytest.fixture
def drafted(rt: Runtime, users: dict[str, int]) -> Runtime:
    publishing.import_files(rt)
    _save(rt, _draft_document())
    return rt


def test_the_form_preview_is_the_agents_form_generated_from_the_draft(drafted: Runtime, login: Login) -> None:
    ops = login("ops")
    page = ops.get(f"{PREVIEW}/form")
    assert page.status_code == 200
    assert "<strong>二手房交易资金存管</strong>（已改动）" in page.text  # the product the draft changes, first
    frame = ops.get(f"{PREVIEW}/form/resale_escrow/frame")
    assert frame.status_code == 200 and frame.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert 'id="f-house_area"' in frame.text and "房屋建筑面积" in frame.text  # only the draft has it
    assert 'id="f-buyer_id_number"' in frame.text  # the base form, as agents get it
    assert '<form class="card intake" id="intake-preview" novalidate>' in frame.text  # no action, no method
    assert "csrf_token" not in frame.text.split('id="intake-preview"')[1]
    assert frame.text.count(" disabled title=") == 2
    published = ops.get(f"{PREVIEW}/form/rent_custody/frame")  # unchanged by the draft: still previewable
    assert published.status_code == 200 and "房屋建筑面积" not in published.text


def test_the_agreement_preview_prints_the_drafts_fee_plan_and_clause(drafted: Runtime, login: Login) -> None:
    reviewer = login("reviewer")
    page = reviewer.get(f"{PREVIEW}/agreement")
    assert page.status_code == 200
    assert 'id="agreement-resale_escrow"' in page.text and 'id="agreement-rent_custody"' not in page.text
    html = reviewer.get(f"{PREVIEW}/agreement/resale_escrow.html")
    assert html.status_code == 200
    text = html.text
    assert "样本/预览" in text and "资金存管服务费" in text and "0.30%" in text
    assert "首期房款" in text and "交割尾款" in text and "政府资金监管" in text
    assert "房屋建筑面积" in text  # the draft's extra field, under 附加信息
    with drafted.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Deal)) == 0  # the sample deal is never stored


def test_the_pdf_preview_is_an_unsigned_watermarked_pdf(drafted: Runtime, login: Login, tmp_path: Path) -> None:
    answer = login("ops").get(f"{PREVIEW}/agreement/resale_escrow.pdf")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/pdf"
    assert answer.data.startswith(b"%PDF-") and b"/ByteRange" not in answer.data  # not signed
    path = tmp_path / "preview.pdf"
    path.write_bytes(answer.data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True, text=True).stdout
    assert "样本" in text and "政府资金监管" in text and "首期房款" in text


def test_an_invalid_draft_is_refused_in_chinese(rt: Runtime, users: dict[str, int], login: Login) -> None:
    publishing.import_files(rt)
    document = _draft_document()
    document["products"]["resale_escrow"]["banks"] = ["nosuchbank"]
    _save(rt, document)
    ops = login("ops")
    for path in ("form", "agreement", "agreement/resale_escrow.html", "agreement/resale_escrow.pdf"):
        answer = ops.get(f"{PREVIEW}/{path}")
        assert answer.status_code == 422, path
        assert "修改后才能预览" in answer.text and "未知银行：nosuchbank" in answer.text


def test_without_a_draft_there_is_nothing_to_preview(rt: Runtime, users: dict[str, int], login: Login) -> None:
    publishing.import_files(rt)
    answer = login("ops").get(f"{PREVIEW}/agreement")
    assert answer.status_code == 404 and "没有草稿" in answer.text


@pytest.mark.parametrize("role", ["agent", "auditor", "finance"])
def test_only_ops_and_reviewers_open_the_previews(drafted: Runtime, login: Login, role: str) -> None:
    other = login(role)
    for path in ("form", "form/resale_escrow/frame", "agreement", "agreement/resale_escrow.html"):
        assert other.get(f"{PREVIEW}/{path}").status_code == 403, path


def test_the_studio_and_the_review_page_link_to_the_previews(drafted: Runtime, login: Login) -> None:
    for role in ("ops", "reviewer"):
        client = login(role)
        studio = client.get(f"/admin/configs/{CITY}/studio").text
        city = client.get(f"/admin/configs/{CITY}").text
        for page in (studio, city):
            assert f'href="{PREVIEW}/form"' in page and f'href="{PREVIEW}/agreement"' in page


def test_the_form_preview_requires_the_signing_parties_phones_as_the_agents_form_does(
    drafted: Runtime, login: Login
) -> None:
    ops = login("ops")
    drafted.party_signing = False
    optional = re.search(r'id="f-seller_phone"[^>]*', ops.get(f"{PREVIEW}/form/resale_escrow/frame").text)
    assert optional and "aria-required" not in optional.group(0)
    drafted.party_signing = True
    required = re.search(r'id="f-seller_phone"[^>]*', ops.get(f"{PREVIEW}/form/resale_escrow/frame").text)
    assert required and 'aria-required="true"' in required.group(0)
