"""The whole city roll-out in a real browser (Debian's chromium, headless, driven by Playwright): ops copies the
virtual city to 成都 510100, simulates and submits; a reviewer reads the plain diff, approves, publishes and
puts 成都 live (上线); an agent creates a resale escrow deal in 成都. Pages stay usable at 1280 px and at 400 px;
screenshots are kept."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from app.platform.runtime import Runtime
from app.queue.worker import run_one
from tests.browser.conftest import no_horizontal_scroll
from tests.conftest import DATABASES, PASSWORD
from tests.factories import RESALE_FORM

# One database: PostgreSQL where configured (CI). The browser drives the same publishing services that
# tests/integration/test_config_publishing.py and tests/web/test_admin_configs.py run on both databases.
pytestmark = pytest.mark.parametrize("database_url", [DATABASES[-1]], indirect=True)

DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 400, "height": 844}
CITY = "/admin/configs/510100"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _narrow_fits(page: Page) -> bool:
    """At 400 px the page has no horizontal scroll; the viewport goes back to 1280 px afterwards."""
    page.set_viewport_size(NARROW)
    try:
        return no_horizontal_scroll(page)
    finally:
        page.set_viewport_size(DESKTOP)


def _shot(page: Page, shot: Path) -> None:
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")


def _log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login", wait_until="load")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation(url=re.compile(r".*/deals$"), timeout=30_000):
        page.click('form:has(input[name="password"]) button[type="submit"]')


def _log_out(page: Page) -> None:
    # nothing of this page still loading: a request sent before the logout (a workflow diagram) and answered
    # after it would set the logged-in session cookie again (the session is refreshed on every response)
    page.wait_for_load_state("networkidle")
    with page.expect_navigation(url=re.compile(r".*/login$"), timeout=30_000):
        page.click('form[action$="/logout"] button[type="submit"]')
    page.wait_for_load_state("load")


def test_ops_rolls_out_chengdu_a_reviewer_publishes_it_and_an_agent_opens_a_deal_there(
    page: Page, base_url: str, rt: Runtime, artifact: Callable[[str], Path]
) -> None:
    # ops: 运营后台 → 城市配置 → a new city copied from the virtual city
    _log_in(page, base_url, "ops")
    page.click('header nav a:has-text("运营后台")')
    page.wait_for_url(re.compile(r".*/admin/$"))
    page.click('nav.console-nav a:has-text("城市配置")')
    page.wait_for_url(re.compile(r".*/admin/configs/$"))
    page.fill('#new-city input[name="admin_code"]', "510100")
    page.fill('#new-city input[name="name"]', "成都")
    page.click('#new-city button[type="submit"]')
    page.wait_for_url(re.compile(r".*/admin/configs/510100$"))
    assert "已由虚拟城市复制出 成都（510100）的草稿" in page.inner_text("body")
    assert "第 1 版（草稿）" in page.inner_text("body")

    # the copy is the virtual city under the new code and name, without a status: going live is a step
    config = json.loads(page.input_value("#content"))
    assert (config["admin_code"], config["name"], "status" in config) == ("510100", "成都", False)
    assert config["products"]["resale_escrow"]["banks"] == ["ceb"]
    # 成都 opens with resale escrow only (a product set to null is not offered)
    config["products"] = {
        product: (settings if product == "resale_escrow" else None) for product, settings in config["products"].items()
    }
    page.fill("#content", json.dumps(config, ensure_ascii=False, indent=2))
    page.click('#draft-form button[type="submit"]')
    page.wait_for_selector("text=已保存为第 1 版草稿")
    assert "删除业务：住房租金托管" in page.inner_text("#plain-diff"), "compared with the virtual city it copies"
    assert "成都尚未发布：审核通过并发布后，还须「上线」代理人才能看到" in page.inner_text("#lint")

    # the simulation is a worker's job: the page comes back at once and refreshes itself until it is done
    page.click('#simulate-form button[type="submit"]')
    page.wait_for_selector("#simulation-run:has-text('仿真排队中')")
    assert "仿真已提交（第 1 版）" in page.inner_text("body")
    assert page.is_disabled('#simulate-form button[type="submit"]')
    assert _narrow_fits(page), "the progress fits 400 px"
    assert run_one(rt, "browser-test-worker")  # real deals, bank over HTTP
    page.wait_for_selector("#simulation:has-text('✓ 通过')", timeout=30_000)  # the next refresh (every 5 s)
    assert "resale_escrow" in page.inner_text("#simulation") and page.locator("#simulation-run").count() == 0
    assert _narrow_fits(page), "the config page fits 400 px"

    page.click('#submit-form button[type="submit"]')
    page.wait_for_selector("text=第 1 版已提交审核")
    _log_out(page)

    # the reviewer approves with a comment and publishes
    _log_in(page, base_url, "reviewer")
    page.goto(f"{base_url}{CITY}")
    page.fill("#comment", "仿真通过，同意成都上线")
    page.click('#review-form button:has-text("批准")')
    page.wait_for_selector("text=第 1 版已批准")
    assert "仿真通过，同意成都上线" in page.inner_text("#versions")
    page.click('#publish-form button[type="submit"]')
    page.wait_for_selector("text=第 1 版已发布")
    assert "已发布" in page.inner_text("#versions")
    assert "已发布但未上线：代理人看不到成都" in page.inner_text("#lint")
    page.click('#live-form button[type="submit"]')
    page.wait_for_selector("text=已上线：代理人现在可以在本城市新建存管")
    assert _narrow_fits(page), "the config page fits 400 px"
    _log_out(page)

    # the agent: 新建存管 offers 成都 resale escrow; the deal is created in 成都
    _log_in(page, base_url, "agent")
    page.click('header nav a:has-text("新建存管")')
    page.wait_for_url(re.compile(r".*/deals/new$"))
    option = page.locator('#choice option[value="510100:resale_escrow"]')
    assert "成都" in option.inner_text()
    page.select_option("#choice", "510100:resale_escrow")
    page.click('#chooser button[type="submit"]')
    page.wait_for_url(re.compile(r".*/deals/new\?choice=510100(%3A|:)resale_escrow$"))
    assert page.input_value('input[name="city_code"]') == "510100"
    for name, value in RESALE_FORM.items():
        if name in ("city_code", "product"):
            continue
        if name == "payment_method":
            page.check(f'input[name="{name}"][value="{value}"]')
        else:
            page.fill(f"#f-{name}", value)
    page.click('button[value="submit"]')
    page.wait_for_url(re.compile(r".*/deals/\d+$"))
    body = page.inner_text("body")
    assert "存管单已创建" in body and "存管单 RE510100" in body
    agreement = page.frame_locator("section.agreement-preview iframe").locator("body").inner_text()
    assert "成都存量房交易资金监管" in agreement, "the agreement cites the new city's rules"
    assert "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分" in body
    assert no_horizontal_scroll(page)
    _shot(page, artifact("rollout-deal-1280.png"))
    page.set_viewport_size(NARROW)
    assert no_horizontal_scroll(page), "the deal page fits 400 px"
    _shot(page, artifact("rollout-deal-400.png"))
    page.set_viewport_size(DESKTOP)
    _log_out(page)

    # ops: the dashboard counts the new deal
    _log_in(page, base_url, "ops")
    page.goto(f"{base_url}/admin/")
    assert no_horizontal_scroll(page)
    assert "待确认协议" in page.content(), "deals by state counts the new deal"
    _shot(page, artifact("rollout-dashboard-1280.png"))
