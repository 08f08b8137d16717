"""Every role's pages in a real browser at 390 and 1280 px: no page scrolls sideways (tables scroll inside
themselves), no internal code, no None and no \\u escapes on screen, and no serious or critical accessibility
violation by axe-core (tests/browser/axe.py). Screenshots are artifacts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import Browser, Page

from app.deals import service as deals
from app.platform.runtime import Runtime
from tests.browser.axe import serious_violations
from tests.browser.conftest import cut_off_details, no_horizontal_scroll, squeezed_cells
from tests.conftest import DATABASES, PASSWORD
from tests.factories import actor, arrive, confirmed_deal, load_deal, open_account, patch_city
from tests.integration.test_products_in_services import RENT_FORM
from tests.web.test_page_labels import assert_readable, internal_codes
from tests.web.test_party_signing import BUYER, BUYER_PHONE, _confirmed, _last_code, _token

# One database: PostgreSQL where configured (CI). Pages read through the services every web test runs on both
# databases; what the walk adds - layout, codes on screen, accessibility - does not depend on the database.
pytestmark = pytest.mark.parametrize("database_url", [DATABASES[-1]], indirect=True)

WIDTHS = ({"width": 1280, "height": 900}, {"width": 390, "height": 844})
# the config studio names each option's code beside its label: configs are written in them (like its JSON tab);
# the clause editor names each variable as the clause writes it ({{ buyer.name }})
SERVICE_FEE = {"name": "资金存管服务费", "payer": "seller", "kind": "rate", "bps": 30}
CONFIG_EDITORS = {
    "/admin/configs/110000/studio",
    "/admin/definitions/clause-editor/gov_supervision",
    "/admin/definitions/bank/ceb/studio",
}


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=WIDTHS[0], locale="zh-CN")
    try:
        yield context.new_page()
    finally:
        context.close()


def _log_in(page: Page, base_url: str, username: str | None) -> None:
    page.context.clear_cookies()
    if username is None:
        return
    page.goto(f"{base_url}/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()


def _check(page: Page, codes: set[str], where: str, shot: Path, shot_wide: Path) -> list[str]:
    """Assert the page as shown now is readable and fits both widths; its axe violations at both (screenshots)."""
    assert_readable(page.content(), codes, where)
    found = []
    for width, path in zip(WIDTHS, (shot_wide, shot), strict=True):
        page.set_viewport_size(width)
        assert no_horizontal_scroll(page), f"{where} scrolls sideways at {width['width']} px"
        squeezed = squeezed_cells(page)
        assert not squeezed, f"{where} wraps table cells a character a line at {width['width']} px: {squeezed}"
        cut = cut_off_details(page)
        assert not cut, f"{where} hides detail values beyond a sideways scroll at {width['width']} px: {cut}"
        hidden = page.evaluate(  # the deals lists' states (the walk's deals: 待入金, 待签约) are on screen unscrolled
            """() => [...document.querySelectorAll('#deals td, #deal-list td')]
              .filter(cell => ['待入金', '待签约'].includes(cell.innerText.trim()))
              .filter(cell => cell.getBoundingClientRect().right > window.innerWidth).length"""
        )
        assert not hidden, f"{where} hides {hidden} state cells beyond the screen at {width['width']} px"
        found += [f"{where} at {width['width']} px: {v}" for v in serious_violations(page)]
        page.screenshot(path=str(path))
    page.set_viewport_size(WIDTHS[0])
    return found


def test_every_roles_pages_fit_both_widths_show_no_codes_and_pass_axe(
    page: Page, base_url: str, client: FlaskClient, rt: Runtime, keys_dir: Path, artifact: Callable[[str], Path]
) -> None:
    patch_city(rt, "110000", {"products": {"resale_escrow": {"fees": [SERVICE_FEE]}}})  # the deal page's fee table
    resale = confirmed_deal(rt)
    open_account(client, keys_dir, rt, resale, "6226000000000501")
    arrive(client, keys_dir, "6226000000000501", 500_00, "REF-B1")
    arrive(client, keys_dir, "6226999999999501", 20_00, "REF-UNKNOWN")  # suspense item 1
    rent = deals.create_deal(rt, actor(rt, "agent"), "110000", "rent_custody", RENT_FORM)
    custody = f"custody:{load_deal(rt, resale).deal_no}"
    walk: dict[str | None, list[str]] = {
        None: ["/login"],
        "agent": ["/deals", "/deals/new", f"/deals/{resale}", f"/deals/{rent}", "/agreements/verify", "/password"],
        "ops": [
            "/admin/",
            "/admin/deals/",
            f"/admin/deals/{resale}",
            "/admin/payouts/",
            "/admin/payee-amendments/",
            "/admin/configs/",
            "/admin/configs/110000",
            "/admin/configs/110000/studio",
            "/admin/definitions/",
            "/admin/definitions/workflow/resale_escrow@2",
            "/admin/definitions/clause-editor/gov_supervision",
            "/admin/definitions/bank/ceb/studio",
            "/finance/callback-alerts",
        ],
        "reviewer": ["/admin/configs/", "/admin/definitions/"],
        "finance": [
            "/finance/reconciliation",
            "/finance/reconciliation/exceptions",
            "/admin/ledger/",
            f"/admin/ledger/account/{custody}",
            "/admin/ledger/transfers",
            "/admin/suspense/",
            "/admin/suspense/1",
        ],
        "auditor": ["/admin/audit/", "/admin/jobs/", "/admin/banks/"],
        "admin": ["/admin/", "/admin/users/"],
    }
    codes = internal_codes(rt)
    inaccessible = []
    for role, paths in walk.items():
        _log_in(page, base_url, role)
        for path in paths:
            page.set_viewport_size(WIDTHS[0])
            response = page.goto(f"{base_url}{path}")
            where = f"{role or 'anonymous'} {path}"
            assert response is not None and response.ok, f"{where} answered {response and response.status}"
            name = f"walk-{role}-{path.strip('/').replace('/', '_').replace(':', '_') or 'home'}"
            shown = set() if path in CONFIG_EDITORS else codes
            inaccessible += _check(page, shown, where, artifact(f"{name}-390.png"), artifact(f"{name}-1280.png"))

    # a money step's confirmation page, reached as people reach it
    _log_in(page, base_url, "finance")
    page.goto(f"{base_url}/admin/suspense/1")
    page.fill("#return-reason", "付款人确认汇错账户")
    page.click('#return-form button[type="submit"]')
    page.wait_for_selector("#money-confirmation")
    shots = (
        artifact("walk-finance-suspense-return-confirm-390.png"),
        artifact("walk-finance-suspense-return-confirm-1280.png"),
    )
    inaccessible += _check(page, codes, "finance suspense return confirmation", *shots)
    inaccessible += _party_signing_pages(page, base_url, rt, codes, artifact)
    assert not inaccessible, "axe-core (serious, critical):\n" + "\n".join(inaccessible)


def _party_signing_pages(
    page: Page, base_url: str, rt: Runtime, codes: set[str], artifact: Callable[[str], Path]
) -> list[str]:
    """A party's signing page (no login: the link from the SMS) before the real-name check and after it."""
    _confirmed(rt)  # party signing on, both parties with phones
    _log_in(page, base_url, None)
    page.goto(f"{base_url}/sign/{_token(rt, BUYER_PHONE)}")
    found = _check(page, codes, "party /sign/<token>", artifact("walk-sign-390.png"), artifact("walk-sign-1280.png"))
    page.click('button:has-text("获取验证码")')
    page.fill('input[name="name"]', BUYER[0])
    page.fill('input[name="id_number"]', BUYER[1])
    page.fill('input[name="code"]', _last_code(rt, BUYER_PHONE))
    page.click('button:has-text("核验身份")')
    page.wait_for_selector("#sign")
    shots = (artifact("walk-sign-checked-390.png"), artifact("walk-sign-checked-1280.png"))
    return found + _check(page, codes, "party /sign/<token> after the check", *shots)
