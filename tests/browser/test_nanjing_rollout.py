"""Issue 18's done-when, in a real browser (Debian's chromium, headless, Playwright): ops open 南京 320100 with the
structured editor only - resale escrow with a 90/10 release, a seller-paid fee, a new clause (written in the clause
editor, reviewed and published by a reviewer through the pages, then picked in the studio), a 房屋面积 field printed
in the agreement and a funding deadline of 3 working days; a reviewer reads the plain diff and the replay,
approves, publishes and puts 南京 live; an agent creates a deal there. Screenshots at 1280 and 390 px of the
studio, the review page and the deal page are kept in the artifact folder."""

from __future__ import annotations

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

# One database, one browser: PostgreSQL where configured (CI). The services these steps drive run on both
# databases in tests/web and tests/integration.
pytestmark = pytest.mark.parametrize("database_url", [DATABASES[-1]], indirect=True)

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
CITY = "/admin/configs/320100"
RESALE = "products/resale_escrow"
CLAUSE = "nanjing_notice"
OTHER_PRODUCTS = (
    "gov_escrow",
    "rent_custody",
    "provident_fund_rent",
    "renovation_escrow",
    "intent_deposit",
    "guarantee_release",
)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _id(key: str) -> str:
    return "#f-" + key.replace("/", "-")


def _log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login", wait_until="load")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation(url=re.compile(r".*/deals$"), timeout=30_000):
        page.click('form:has(input[name="password"]) button[type="submit"]')


def _log_out(page: Page) -> None:
    page.wait_for_load_state("networkidle")  # no request of this page answered after the logout
    with page.expect_navigation(url=re.compile(r".*/login$"), timeout=30_000):
        page.click('form[action$="/logout"] button[type="submit"]')
    page.wait_for_load_state("load")


def _shots(page: Page, artifact: Callable[[str], Path], name: str) -> None:
    """Full-page screenshots at 1280 and at 390 px (which must not scroll sideways); back to 1280 after."""
    assert no_horizontal_scroll(page), f"{name} fits 1280 px"
    page.screenshot(path=str(artifact(f"{name}-1280.png")), full_page=True, timeout=60_000)
    page.set_viewport_size(PHONE)
    try:
        assert no_horizontal_scroll(page), f"{name} fits 390 px"
        page.screenshot(path=str(artifact(f"{name}-390.png")), full_page=True, timeout=60_000)
    finally:
        page.set_viewport_size(DESKTOP)


def _open_section(page: Page, code: str) -> None:
    section = f"#section-products-{code}"
    if page.get_attribute(section, "open") is None:
        page.click(f"{section} > summary")


def _save_studio(page: Page) -> None:
    page.click('#studio-form button[type="submit"]')
    page.wait_for_selector("text=版草稿", timeout=30_000)


def _write_clause(page: Page, base_url: str, rt: Runtime) -> None:
    """ops: 工作流与协议 → 条款编辑器 (a new name) → title, a list, bold, a variable → saved, simulated, submitted."""
    page.goto(f"{base_url}/admin/definitions/")
    page.fill("#clause-name", CLAUSE)
    page.click('#open-clause-editor button[type="submit"]')
    page.wait_for_url(re.compile(rf".*/clause-editor/{CLAUSE}$"))
    page.fill("#clause-title", "南京资金存管特别约定")
    page.fill(
        "#clause-body",
        "**南京**交易双方另行约定：\n1. 存管资金按放款计划分期释放；\n2. 房屋所在：",
    )
    page.click("#clause-body")
    page.keyboard.press("End")
    page.select_option("#clause-variable", "property.address")
    page.click("#clause-insert")
    # the script inserted the variable at the cursor and refreshed the preview (the sample deal's address)
    page.wait_for_selector("#clause-preview li:has-text('房屋所在：南京市玄武区样本路1号')")
    assert "南京资金存管特别约定" in page.inner_text("#clause-preview")
    page.click('#clause-form button[value="save"]')
    page.wait_for_selector("text=已保存为第 1 版草稿")
    assert "{{ property.address }}" in page.input_value("#clause-body")
    preview = page.inner_text("#clause-preview")
    assert "存管资金按放款计划分期释放" in preview and "南京" in preview
    page.click("text=条款页：版本、仿真与审核")
    page.wait_for_url(re.compile(rf".*/admin/definitions/clause/{CLAUSE}$"))
    page.click('#simulate-form button[type="submit"]')
    page.wait_for_selector("text=仿真已提交")
    assert run_one(rt, "browser-test-worker")
    page.reload()
    page.wait_for_selector("#simulation:has-text('✓ 通过')")
    page.click('#submit-form button[type="submit"]')
    page.wait_for_selector("text=已提交审核")


def _review_clause(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/admin/definitions/clause/{CLAUSE}")
    page.fill("#comment", "条款文字已核对")
    page.click('#review-form button:has-text("批准")')
    page.wait_for_selector("text=已批准")
    page.click('#publish-form button[type="submit"]')
    page.wait_for_selector("text=已发布，新建的存管单即刻使用")


def _studio(page: Page, base_url: str, artifact: Callable[[str], Path]) -> None:
    """ops: 城市配置 → 新建城市 南京 → 表单编辑: only resale escrow, on the workflow version with a funding deadline."""
    page.goto(f"{base_url}/admin/configs/")
    page.fill('#new-city input[name="admin_code"]', "320100")
    page.fill('#new-city input[name="name"]', "南京")
    page.click('#new-city button[type="submit"]')
    page.wait_for_url(re.compile(r".*/admin/configs/320100$"))
    page.click("#studio-link")
    page.wait_for_url(re.compile(r".*/admin/configs/320100/studio$"))
    for code in OTHER_PRODUCTS:
        _open_section(page, code)
        page.uncheck(f"#products-{code}-on")
    _open_section(page, "resale_escrow")
    page.select_option(_id(f"{RESALE}/workflow"), "resale_escrow@3")
    page.select_option(_id(f"{RESALE}/agreement/template"), "resale_escrow/v3")
    _save_studio(page)  # the deadlines offered are the chosen workflow's

    _open_section(page, "resale_escrow")
    page.fill(_id(f"{RESALE}/deadlines/funding_deadline"), "3")
    page.select_option(f'select[name="{RESALE}/deadlines/funding_deadline:unit"]', "working_days")
    tranches = f"{RESALE}/release/tranches"
    page.fill(_id(f"{tranches}/0/label"), "首期")
    page.fill(_id(f"{tranches}/0/share_bps"), "90")
    page.uncheck(_id(f"{tranches}/0/remainder"))
    page.fill(_id(f"{tranches}/1/label"), "尾款")
    page.check(_id(f"{tranches}/1/remainder"))
    page.select_option(_id(f"{tranches}/1/event"), "handover_done")
    page.fill(_id(f"{RESALE}/fees/0/name"), "资金存管服务费")
    page.select_option(_id(f"{RESALE}/fees/0/payer"), "seller")
    page.select_option(_id(f"{RESALE}/fees/0/kind"), "rate")
    page.fill(_id(f"{RESALE}/fees/0/bps"), "0.3")
    clauses = _id(f"{RESALE}/agreement/clauses")
    assert "南京资金存管特别约定" in page.inner_text(clauses), "the published clause is offered by its title"
    page.check(f'{clauses} input[value="{CLAUSE}"]')
    page.check(f'{clauses} input[value="dispute"]')
    form = f"{RESALE}/form"
    page.fill(_id(f"{form}/0/name"), "floor_area")
    page.fill(_id(f"{form}/0/title"), "房屋面积")
    page.fill(_id(f"{form}/0/x-section"), "房屋信息")
    page.select_option(_id(f"{form}/0/type"), "number")
    page.fill(_id(f"{form}/0/x-order"), "1")
    page.check(_id(f"{form}/0/required"))
    page.fill(_id(f"{form}/0/minimum"), "1")
    page.fill(_id(f"{form}/0/description"), "建筑面积，单位：平方米")
    _save_studio(page)
    assert "已保存为第 1 版草稿" in page.inner_text("body")
    assert page.locator(".studio-error").count() == 0
    _open_section(page, "resale_escrow")
    _shots(page, artifact, "nanjing-studio")


def test_ops_open_nanjing_with_the_studio_a_reviewer_puts_it_live_and_an_agent_opens_a_deal(
    page: Page, base_url: str, rt: Runtime, artifact: Callable[[str], Path]
) -> None:
    _log_in(page, base_url, "ops")
    _write_clause(page, base_url, rt)
    _log_out(page)
    _log_in(page, base_url, "reviewer")
    _review_clause(page, base_url)
    _log_out(page)

    _log_in(page, base_url, "ops")
    _studio(page, base_url, artifact)
    page.goto(f"{base_url}{CITY}")
    page.click('#simulate-form button[type="submit"]')
    page.wait_for_selector("#simulation-run:has-text('仿真排队中')")
    assert run_one(rt, "browser-test-worker")
    page.wait_for_selector("#simulation:has-text('✓ 通过')", timeout=30_000)
    page.click('#submit-form button[type="submit"]')
    page.wait_for_selector("text=第 1 版已提交审核")
    _log_out(page)

    # the reviewer reads the plain diff (against the virtual city it was copied from) and the replay
    _log_in(page, base_url, "reviewer")
    page.goto(f"{base_url}{CITY}")
    diff = page.inner_text("#plain-diff")
    for expected in (
        "放款计划 · 第 1 期 · 新增比例：90%",
        "新增第 2 期：尾款（余款 是，放款事件 物业交割）",
        "新增收费：资金存管服务费（付款方 卖方，收费方式 按费率，费率 0.3%）",
        "新增字段：房屋面积（数字，必填）",
        "新增条款：南京资金存管特别约定（nanjing_notice）",
        "时限 · 新增入金期限：3 个工作日",
    ):
        assert expected in diff, expected
    notes = page.locator("#simulation details.simulation-notes")
    assert notes.count() == 1 and notes.get_attribute("open") is None, "the unreachable paths are one click away"
    assert "条路径在本配置下不可达" in notes.locator("summary").inner_text()
    replay = page.inner_text("#replay")
    assert "本城市没有可重放的真实存管单" in replay, "a new city has no deals: the page says so"
    _shots(page, artifact, "nanjing-review")
    page.fill("#comment", "放款计划、收费、条款与入金期限已核对，仿真通过")
    page.click('#review-form button:has-text("批准")')
    page.wait_for_selector("text=第 1 版已批准")
    page.click('#publish-form button[type="submit"]')
    page.wait_for_selector("text=第 1 版已发布")
    page.click('#live-form button[type="submit"]')
    page.wait_for_selector("text=已上线：代理人现在可以在本城市新建存管")
    _log_out(page)

    # the agent: 新建存管 → 南京 · 二手房; the form asks for 房屋面积; the deal's agreement prints what ops set
    _log_in(page, base_url, "agent")
    page.click('header nav a:has-text("新建存管")')
    page.wait_for_url(re.compile(r".*/deals/new$"))
    page.select_option("#choice", "320100:resale_escrow")
    page.click('#chooser button[type="submit"]')
    page.wait_for_url(re.compile(r".*/deals/new\?choice=320100(%3A|:)resale_escrow$"))
    assert "房屋面积" in page.inner_text("body") and page.is_visible("#f-floor_area")
    for name, value in RESALE_FORM.items():
        if name in ("city_code", "product"):
            continue
        if name == "payment_method":
            page.check(f'input[name="{name}"][value="{value}"]')
        else:
            page.fill(f"#f-{name}", value)
    page.fill("#f-floor_area", "89.5")
    page.click('button[value="submit"]')
    page.wait_for_url(re.compile(r".*/deals/\d+$"))
    body = page.inner_text("body")
    assert "存管单已创建" in body and "存管单 RE320100" in body
    agreement = page.frame_locator("section.agreement-preview iframe").locator("body").inner_text()
    for expected in ("南京存量房交易资金监管", "首期（90%）", "尾款", "资金存管服务费", "房屋面积", "89.5"):
        assert expected in agreement, expected
    assert "南京资金存管特别约定" in agreement and "3个工作日" in agreement
    # 90/10 of ¥1,234,567.89: 过户完成 releases ¥1,111,111.10, 物业交割 the rest, ¥123,456.79
    assert re.search(r"首期（90%）：过户完成后释放，金额：¥1,111,111\.10", agreement), agreement
    assert re.search(r"尾款（余款）：物业交割后释放，金额：¥123,456\.79", agreement), agreement
    assert "¥3,703.70" in body, "the seller's fee, 0.3% of the custody amount"
    _shots(page, artifact, "nanjing-deal")
