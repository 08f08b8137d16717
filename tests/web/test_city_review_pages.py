"""城市配置 pages, review side (issue 18): the list shows which products agents see in which city; a reviewer
puts a published city live (or takes it offline) on its page; lint warnings; the plain-language diff with the
raw one a click away; a new city copied from a city is compared with it; submitting needs a simulation."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable

from flask.testing import FlaskClient

from app.cities import publishing
from app.platform.config import ROOT
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.integration.test_config_publishing import pass_simulation

Login = Callable[[str], FlaskClient]
BEIJING = (ROOT / "city_configs" / "110000.json").read_text(encoding="utf-8")
FEE = {"name": "资金存管服务费", "payer": "seller", "kind": "rate", "bps": 5}


def post(client: FlaskClient, page: str, url: str, **data: str) -> str:
    token = csrf_token(client.get(page).text)
    answer = client.post(url, data={"csrf_token": token, **data}, follow_redirects=True)
    assert answer.status_code == 200, (url, answer.status_code)
    return html.unescape(answer.text)


def row(listing: str, stem: str) -> str:
    """The text of the city list's row of `stem`."""
    found = re.search(rf'<tr>\s*<td class="mono"><a href="/admin/configs/{stem}">.*?</tr>', listing, re.S)
    assert found is not None, stem
    return re.sub(r"<[^>]+>", " ", found.group(0))


def with_fee(bps: int) -> str:
    """北京's file with a fee on resale escrow, as a browser posts the textarea (CRLF)."""
    fee = json.dumps([FEE | {"bps": bps}], ensure_ascii=False)
    agreement = '"agreement": {"template": "resale_escrow/v1"}'
    assert agreement in BEIJING
    return BEIJING.replace(agreement, f'{agreement}, "fees": {fee}').replace("\n", "\r\n")


def test_the_list_shows_what_agents_see_and_a_reviewer_puts_qingdao_live(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    listing = login("ops").get("/admin/configs/").text
    assert "代理人可见的业务" in listing
    beijing = row(listing, "110000")
    assert "已上线" in beijing and "二手房交易资金存管" in beijing and "住房租金托管" in beijing
    assert "未上线" in row(listing, "370200") and "未上线" in row(listing, "440300")
    assert "模板，不上线" in row(listing, "_virtual")
    page = html.unescape(login("ops").get("/admin/configs/370200").text)
    assert "已发布但未上线：代理人看不到青岛，审核人在本页「上线」后才能新建存管" in page
    assert "上线（代理人可以新建存管）" not in page, "ops do not put cities live"
    assert "青岛" not in login("agent").get("/deals/new").text

    reviewer = login("reviewer")
    page = post(reviewer, "/admin/configs/370200", "/admin/configs/370200/go-live")
    assert "已上线：代理人现在可以在本城市新建存管" in page and "已发布但未上线" not in page
    assert "下线（代理人不能再新建本城市的存管）" in page
    qingdao = row(reviewer.get("/admin/configs/").text, "370200")
    assert "已上线" in qingdao and "二手房交易资金存管" in qingdao
    assert "青岛 · 二手房交易资金存管" in login("agent").get("/deals/new").text

    reviewer = login("reviewer")
    page = post(reviewer, "/admin/configs/370200", "/admin/configs/370200/take-offline")
    assert "已下线：代理人不能再新建本城市的存管" in page and "已发布但未上线" in page
    assert "青岛" not in login("agent").get("/deals/new").text


def test_the_reviewer_reads_a_plain_diff_and_submitting_needs_a_simulation(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    ops, page_url = login("ops"), "/admin/configs/110000"
    page = post(ops, page_url, f"{page_url}/draft", content=with_fee(5))
    assert '改了什么<small class="text-muted">（与已发布的第 1 版比较）</small>' in page
    assert "二手房交易资金存管 · 新增收费：资金存管服务费（付款方 卖方，收费方式 按费率，费率 0.05%）" in page
    assert "<summary>原始差异（JSON）</summary>" in page
    raw = re.search(r'<pre class="diff" id="diff">(.*?)</pre>', page, re.S)
    assert raw is not None
    changed = [line for line in raw.group(1).splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert len(changed) == 2, "CRLF from the browser: only the fee's line differs, not every line"
    assert "第 2 版尚未通过全部业务的仿真：仿真全部业务并通过后才能提交审核" in page

    page = post(ops, page_url, f"{page_url}/draft", content=with_fee(30))
    assert "二手房交易资金存管 · 新增收费：资金存管服务费（付款方 卖方，收费方式 按费率，费率 0.3%）" in page
    page = post(ops, page_url, f"{page_url}/submit")
    assert "第 2 版尚无通过的仿真（或继承的配置已变）：请先对全部业务运行仿真" in page
    pass_simulation(rt, "110000")
    page = post(ops, page_url, f"{page_url}/submit")
    assert "第 2 版已提交审核" in page and "尚未通过全部业务的仿真" not in page

    reviewer = login("reviewer")
    post(reviewer, page_url, f"{page_url}/approve", comment="同意")
    post(reviewer, page_url, f"{page_url}/publish")
    ops = login("ops")
    page = post(ops, page_url, f"{page_url}/draft", content=with_fee(5))
    assert "二手房交易资金存管 · 资金存管服务费 · 费率 0.3% → 0.05%" in page


def test_a_new_city_copied_from_shanghai_is_compared_with_shanghai(
    login: Login, rt: Runtime, users: dict[str, int]
) -> None:
    publishing.import_files(rt)
    ops = login("ops")
    listing = ops.get("/admin/configs/").text
    assert '<option value="310000">复制自 上海（310000）</option>' in listing
    page = post(ops, "/admin/configs/", "/admin/configs/new", admin_code="420100", name="武汉", source="310000")
    assert "已由上海复制出 武汉（420100）的草稿" in page
    assert "（与复制来源 310000比较）" in page
    assert "<li>城市名称 上海 → 武汉</li>" in page and "<li>行政区划代码 310000 → 420100</li>" in page
    assert "新增业务" not in page, "compared with its source, not with nothing"
    assert "武汉尚未发布：审核通过并发布后，还须「上线」代理人才能看到" in page
    assert '"status"' not in page.split('id="content"')[1].split("</textarea>")[0], "go-live is a step"
