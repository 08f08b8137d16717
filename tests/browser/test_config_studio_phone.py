"""The config studio in a real browser (Debian's chromium, headless, Playwright) at 390 px and 1280 px: ops open
南京's draft in 表单编辑, a bad amount is flagged as typed and refused at its field by the server, then a 90/10
release and a seller-paid fee are saved through the form. Screenshots at both widths are kept."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from app.cities import publishing
from app.cities.sources import open_version
from app.platform.runtime import Runtime
from tests.browser.conftest import no_horizontal_scroll
from tests.conftest import PASSWORD

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
RESALE = "products/resale_escrow"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, locale="zh-CN")
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _id(key: str) -> str:
    return "#f-" + key.replace("/", "-")


def test_ops_edit_nanjing_in_the_studio_on_a_phone(
    page: Page, base_url: str, rt: Runtime, artifact: Callable[[str], Path]
) -> None:
    publishing.import_files(rt)
    page.goto(f"{base_url}/login")
    page.fill('input[name="username"]', "ops")
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation(url=re.compile(r".*/deals$")):
        page.click('form:has(input[name="password"]) button[type="submit"]')
    page.goto(f"{base_url}/admin/configs/")
    page.fill('#new-city input[name="admin_code"]', "320100")
    page.fill('#new-city input[name="name"]', "南京")
    page.click('#new-city button[type="submit"]')
    page.wait_for_url(re.compile(r".*/admin/configs/320100$"))
    page.click("#studio-link")
    page.wait_for_url(re.compile(r".*/admin/configs/320100/studio$"))
    assert no_horizontal_scroll(page), "the studio fits a 390 px phone"
    assert page.is_hidden(_id(f"{RESALE}/custody/min_fen")), "a product's section opens when asked"
    page.click("#section-products-resale_escrow > summary")

    page.fill(_id(f"{RESALE}/custody/min_fen"), "12.345")
    assert "最多两位小数" in page.inner_text(_id(f"{RESALE}/custody/min_fen") + "-live"), "checked as typed"
    page.click('#studio-form button[type="submit"]')
    page.wait_for_selector(_id(f"{RESALE}/custody/min_fen") + "-error")
    assert "金额最多两位小数（精确到分）" in page.inner_text(_id(f"{RESALE}/custody/min_fen") + "-error")

    assert page.is_visible(_id(f"{RESALE}/custody/min_fen")), "the section with the error is open"
    page.fill(_id(f"{RESALE}/custody/min_fen"), "1")
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
    page.screenshot(path=str(artifact("config-studio-390.png")), full_page=True, timeout=120_000)
    page.click('#studio-form button[type="submit"]')
    page.wait_for_selector("text=已保存为第 1 版草稿")
    assert no_horizontal_scroll(page)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(artifact("config-studio-1280.png")), full_page=True, timeout=120_000)

    with rt.db.uow() as uow:
        version = open_version(uow.session, "320100")
        assert version is not None
        product = json.loads(version.content)["products"]["resale_escrow"]
    assert product["release"]["tranches"] == [
        {"label": "首期", "share_bps": 9000},
        {"label": "尾款", "remainder": True, "event": "handover_done"},
    ]
    assert product["fees"] == [{"name": "资金存管服务费", "payer": "seller", "kind": "rate", "bps": 30}]
