"""The intake form in a real browser (Debian's chromium, headless, driven by Playwright) at phone width:
a wrong ID number is refused next to its field, fixed, submitted, and the deal page is reached."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import no_horizontal_scroll
from tests.conftest import PASSWORD
from tests.factories import RESALE_FORM

PHONE = {"width": 390, "height": 844}
WRONG_ID = "110105194912310021"  # right shape, wrong check character


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, locale="zh-CN")
    try:
        yield context.new_page()
    finally:
        context.close()


def _fill(page: Page, values: dict[str, str]) -> None:
    for name, value in values.items():
        if name in ("city_code", "product"):
            continue
        if name == "payment_method":
            page.check(f'input[name="{name}"][value="{value}"]')
        else:
            page.fill(f"#f-{name}", value)


def test_wrong_id_is_refused_fixed_and_the_deal_page_is_reached_on_a_phone(
    page: Page, base_url: str, artifact: Callable[[str], Path]
) -> None:
    page.goto(f"{base_url}/login")
    page.fill('input[name="username"]', "agent")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.goto(f"{base_url}/deals/new?choice=110000:resale_escrow")
    assert no_horizontal_scroll(page)
    assert page.is_hidden("#w-loan_bank"), "mortgage fields only when 贷款 is chosen"

    _fill(page, {**RESALE_FORM, "buyer_id_number": WRONG_ID})
    page.locator("#f-buyer_name").focus()  # leave the ID field: the instant check speaks first
    assert "校验位" in page.inner_text("#e-buyer_id_number")
    page.check('input[name="payment_method"][value="贷款"]')
    assert page.is_visible("#w-loan_bank")
    page.check('input[name="payment_method"][value="全款"]')

    page.click('button[value="submit"]')
    page.wait_for_selector("#e-buyer_id_number")
    assert "/deals/new" in page.url, "the server refused the form"
    assert "买方身份证号无效" in page.inner_text("#w-buyer_id_number .error")
    assert page.input_value("#f-property_address") == RESALE_FORM["property_address"], "typed values are kept"
    assert no_horizontal_scroll(page), "errors do not widen the page"
    shot = artifact("intake-form-phone-390px.png")
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")

    page.fill("#f-buyer_id_number", RESALE_FORM["buyer_id_number"])
    page.click('button[value="submit"]')
    page.wait_for_url(re.compile(r".*/deals/\d+$"))
    assert "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分" in page.content()
    assert no_horizontal_scroll(page)
