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
