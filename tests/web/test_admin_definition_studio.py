"""表单编辑 of a definition (bank here): ops edits fields and gets a draft whose JSON has them; a wrong value is
refused in Chinese at its field; a reviewer reads the form; an agent is refused."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from app.definitions import publishing
from app.platform.errors import NotFound
from app.platform.runtime import Runtime
from tests.conftest import csrf_token

Login = Callable[[str], FlaskClient]
PAGE = "/admin/definitions/bank/ceb/studio"


def _form(page: str) -> dict[str, str]:
    """The inputs the page shows, as a browser would post them (checked boxes only)."""
    data: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if not name or ('type="checkbox"' in tag and " checked" not in tag):
            continue
        data[html.unescape(name.group(1))] = html.unescape(value.group(1)) if value else ""
    for name, chosen in re.findall(r'<select [^>]*name="([^"]+)"[^>]*>.*?<option value="([^"]*)" selected', page, re.S):
        data[html.unescape(name)] = html.unescape(chosen)
    return data


def test_ops_edits_a_bank_through_the_form_and_gets_a_draft(login: Login, rt: Runtime, users: dict[str, int]) -> None:
    ops = login("ops")
    assert "表单编辑" in ops.get("/admin/definitions/bank/ceb").text
    page = ops.get(PAGE)
    assert page.status_code == 200 and "开户限额" in page.text and "每秒开户数" in page.text
    data = _form(page.text)
    assert data["opening_limits/per_second"] == "20" and data["csrf_token"] == csrf_token(page.text)
    data["opening_limits/per_second"] = "-3"
    refused = ops.post(PAGE, data=data)
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert 'id="f-opening_limits-per_second-error"' in text and "每秒开户数请填写整数" in text
    with pytest.raises(NotFound):  # nothing saved
        publishing.draft_content(rt, "bank", "ceb")
    data.update({"name": "中国光大银行股份有限公司", "opening_limits/per_second": "35"})
    saved = ops.post(PAGE, data=data, follow_redirects=True)
    assert saved.status_code == 200 and "已保存为第" in saved.text
    version, content = publishing.draft_content(rt, "bank", "ceb")
    bank = json.loads(content)
    assert bank["name"] == "中国光大银行股份有限公司" and bank["opening_limits"]["per_second"] == 35
    published = rt.definitions.published("bank", "ceb")
    assert published is not None and bank["statement"] == json.loads(published.content)["statement"]
    assert f"已保存为第 {version} 版草稿" in saved.text


def test_a_reviewer_reads_the_form_and_an_agent_is_refused(login: Login, users: dict[str, int]) -> None:
    reviewer = login("reviewer")
    page = reviewer.get(PAGE)
    assert page.status_code == 200 and "每秒开户数" in page.text
    assert "保存草稿" not in page.text and " disabled" in page.text
    assert reviewer.post(PAGE, data={"csrf_token": csrf_token(page.text)}).status_code == 403
    assert login("agent").get(PAGE).status_code == 403


def test_a_variants_workflow_base_and_template_are_picked_from_the_catalog(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    """新房资金监管: its workflow, base product and agreement template are dropdowns of what is served; a name the
    catalog does not have is refused at its field, a chosen one is saved."""
    ops = login("ops")
    url = "/admin/definitions/product/new_home_supervision/studio"
    page = ops.get(url)
    assert page.status_code == 200
    text = html.unescape(page.text)
    for name in ("workflow/id", "base", "agreement/template"):
        assert re.search(rf'<select [^>]*name="{re.escape(name)}"', text), name
    assert '<option value="resale_escrow" selected' in text and "resale_escrow/v2" in text
    data = _form(page.text)
    assert (data["workflow/id"], data["base"]) == ("resale_escrow", "resale_escrow")
    refused = ops.post(url, data={**data, "agreement/template": "no_such/v9"})
    assert refused.status_code == 422 and 'id="f-agreement-template-error"' in refused.text
    with pytest.raises(NotFound):
        publishing.draft_content(rt, "product", "new_home_supervision")
    saved = ops.post(url, data={**data, "agreement/template": "resale_escrow/v3"}, follow_redirects=True)
    assert saved.status_code == 200 and "已保存为第" in saved.text
    _, content = publishing.draft_content(rt, "product", "new_home_supervision")
    assert json.loads(content)["agreement"]["template"] == "resale_escrow/v3"
