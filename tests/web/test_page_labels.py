"""People see labels, never codes: the main lists and details of every role show no product, state, bank or
job code, never "None" and no \\u escapes; the console's filters are dropdowns in Chinese."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from app.banks.registry import configured_banks
from app.deals import service as deals
from app.domain.labels import JOB_KIND_LABELS, account_label, audit_action_label
from app.platform.runtime import Runtime
from app.products.loader import repository_products
from tests.factories import actor, arrive, confirmed_deal, load_deal, open_account
from tests.integration.test_products_in_services import RENT_FORM

Login = Callable[[str], FlaskClient]

# internal identifiers that must never be a word of a page people read
PRODUCT_CODES = set(repository_products().codes())
BANK_CODES = set(configured_banks())
JOB_KINDS = set(JOB_KIND_LABELS)
SEPARATORS = re.compile(r"[\s/·（）()→：，,、|]+")  # "a:b" stays one word: a reference, not a code


def internal_codes(rt: Runtime) -> set[str]:
    states = {state for definition in rt.workflows.values() for state in definition.states}
    return PRODUCT_CODES | BANK_CODES | JOB_KINDS | states | {"asset", "liability"}


def visible_words(html: str) -> list[str]:
    """The page's text as people read it (no tags, scripts or styles), split into words. The console's source
    editors (config and definition JSON, templates: `textarea.*-editor`) show what a person writes, codes included."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r'<textarea\b[^>]*class="[^"]*-editor\b.*?</textarea>', " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return [word for word in SEPARATORS.split(text) if word]


def assert_readable(html: str, codes: set[str], where: str) -> None:
    words = visible_words(html)
    leaked = sorted({word for word in words if word in codes})
    assert not leaked, f"{where} shows internal codes {leaked}"
    assert "None" not in words, f"{where} shows None"
    assert "\\u" not in html, f"{where} shows \\u escapes"


@pytest.fixture
def two_products(client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict) -> tuple[int, int]:
    """A funded resale deal (account opened, money arrived, jobs queued) and a rent deal just created."""
    resale = confirmed_deal(rt)
    open_account(client, keys_dir, rt, resale, "6226000000000301")
    arrive(client, keys_dir, "6226000000000301", 500_00, "REF-L1")
    rent = deals.create_deal(rt, actor(rt, "agent"), "110000", "rent_custody", RENT_FORM)
    return resale, rent


def test_every_roles_main_pages_show_labels_not_codes(login: Login, rt: Runtime, two_products: tuple[int, int]) -> None:
    resale, rent = two_products
    codes = internal_codes(rt)
    custody = f"custody:{load_deal(rt, resale).deal_no}"
    pages = {
        "agent": ["/deals", f"/deals/{resale}", f"/deals/{rent}"],
        "ops": [
            "/deals",
            f"/deals/{resale}",
            "/admin/deals/",
            f"/admin/deals/{resale}",
            f"/admin/deals/{rent}",
            "/admin/payouts/",
        ],
        "finance": [
            "/admin/",
            "/admin/ledger/",
            f"/admin/ledger/account/{custody}",
            "/admin/suspense/",
            "/finance/reconciliation",
        ],
        "auditor": ["/admin/deals/", f"/admin/deals/{resale}", "/admin/ledger/transfers", "/admin/jobs/"],
    }
    for role, urls in pages.items():
        client = login(role)
        for url in urls:
            answer = client.get(url)
            assert answer.status_code == 200, (role, url, answer.status_code)
            assert_readable(answer.text, codes, f"{role} {url}")
    agent_page = login("agent").get(f"/deals/{resale}").text
    assert "二手房交易资金存管" in agent_page and "北京" in agent_page and "中国光大银行" in agent_page
    detail = login("ops").get(f"/admin/deals/{resale}").text
    assert "已入金" in detail or "待入金" in detail, "states in the product's words"
    assert f"存管户 {load_deal(rt, resale).deal_no}" in detail and "银行清算户（中国光大银行）" in detail
    agent = login("agent")
    rent_no, resale_no = load_deal(rt, rent).deal_no, load_deal(rt, resale).deal_no
    found = agent.get("/deals?q=住房租金托管").text
    assert rent_no in found and resale_no not in found and 'class="cards"' in found, "searchable, cards on phones"
    assert "没有符合" in agent.get("/deals?q=不存在的地址").text
    console_filters_are_dropdowns_in_chinese(login, rt, two_products)
    audit_log_reads_in_chinese_with_filters(login, rt, resale)


def console_filters_are_dropdowns_in_chinese(login: Login, rt: Runtime, two_products: tuple[int, int]) -> None:
    resale, rent = two_products
    client = login("ops")
    page = client.get("/admin/deals/").text
    assert '<select class="form-control form-control-sm" name="city"' in page and ">北京</option>" in page
    assert ">住房租金托管</option>" in page and ">中国光大银行</option>" in page
    assert '<optgroup label="二手房交易资金存管">' in page
    rent_no, resale_no = load_deal(rt, rent).deal_no, load_deal(rt, resale).deal_no
    only_rent = client.get("/admin/deals/?product=rent_custody&city=110000&bank=ceb").text
    assert rent_no in only_rent and resale_no not in only_rent
    state = load_deal(rt, rent).state
    by_state = client.get(f"/admin/deals/?state=rent_custody:{state}").text
    assert rent_no in by_state and resale_no not in by_state, "a state is chosen within its product"


def test_labels_of_accounts_and_audit_actions() -> None:
    names = {code: bank.name for code, bank in configured_banks().items()}
    assert account_label("custody:RE11000020261123000001", names) == "存管户 RE11000020261123000001"
    assert account_label("bank_clearing:ceb", names) == "银行清算户（中国光大银行）"
    assert account_label("suspense:icbc", names) == "挂账（中国工商银行）"
    assert audit_action_label("payout.approve") == "审批付款"
    assert audit_action_label(None) == "—"


def audit_log_reads_in_chinese_with_filters(login: Login, rt: Runtime, resale: int) -> None:
    deal_no = load_deal(rt, resale).deal_no
    auditor = login("auditor")
    page = auditor.get("/admin/audit/").text
    assert "\\u" not in page and "新建存管单" in page and "流程：" in page, "decoded, actions labelled"
    assert_readable(page, internal_codes(rt) - {"asset", "liability"}, "auditor /admin/audit/")
    only = auditor.get(f"/admin/audit/?action=deal.create&subject={deal_no}").text
    assert only.count('<tr><td data-label="序号">') == 1 and deal_no in only, "filtered by action and subject"
    nothing = auditor.get("/admin/audit/?date_from=2000-01-01&date_to=2000-01-02").text
    assert "暂无记录" in nothing
