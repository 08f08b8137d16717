"""Deal pages of products other than resale escrow name their parties as the product does, show what a
product lacks as not yet registered, and let ops fire the product's actions with their inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient

from app.deals import service as deals
from app.deals.sample_forms import sample_form
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import (
    INTENT_FORM,
    actor,
    arrive,
    confirmed_deal,
    load_deal,
    notification,
    open_account,
    patch_city,
    post_callback,
)
from tests.integration.test_products_in_services import RENT_FORM

Login = Callable[[str], FlaskClient]


def test_rent_custody_deal_page_names_tenant_and_landlord(login: Login, rt: Runtime) -> None:
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "110000", "rent_custody", RENT_FORM)
    page = login("agent").get(f"/deals/{deal_id}").text
    assert "承租人" in page and "出租人" in page and "买方" not in page
    assert "110***********002X" in page and "11010519491231002X" not in page, "ID numbers masked"


def test_intent_deposit_names_its_developer_in_the_deal_page_and_the_admin(login: Login, rt: Runtime) -> None:
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "310000", "intent_deposit", INTENT_FORM)
    page = login("agent").get(f"/deals/{deal_id}").text
    assert "开发企业" in page and INTENT_FORM["developer_name"] in page and "待登记" not in page
    ops = login("ops")
    detail = ops.get(f"/admin/deals/{deal_id}")
    assert detail.status_code == 200 and "意向购房人" in detail.text


def test_ops_cancels_a_renovation_deal_through_the_deal_page(login: Login, rt: Runtime) -> None:
    form = {
        "owner_name": "张三",
        "owner_id_number": "11010519491231002X",
        "owner_phone": "13912345678",
        "property_address": "北京市朝阳区建国路1号1单元101",
        "contractor_name": "北京美家装饰工程有限公司",
        "contractor_uscc": "91110105MA01ABCD5F",
        "contractor_bank_account": "6222600260001072444",
        "contract_no": "ZX-2026-001",
        "contract_amount": "100000",
        "custody_amount": "80000",
    }
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "310000", "renovation_escrow", form)
    ops = login("ops")
    page = ops.get(f"/deals/{deal_id}").text
    answer = ops.post(
        f"/deals/{deal_id}/actions/cancel", data={"reason": "业主撤回委托", "csrf_token": csrf_token(page)}
    )
    assert answer.status_code == 302
    assert load_deal(rt, deal_id).state == "cancelled"


def test_the_timeline_shows_what_arrived_against_what_was_due_never_a_bare_full_arrival(
    client: FlaskClient, login: Login, rt: Runtime, keys_dir: Path
) -> None:
    """济南 provident-fund rent of ¥1,500 a month: the fund centre pays ¥2,800. The workflow takes it as rent
    covered; the ¥1,300 beyond it goes back when the lease is settled (workflow v2): the line says so instead of
    公积金划款足额到账 ¥2,800. A resale deal's first ¥500 says what is still missing."""
    patch_city(rt, "370100", {"products": {"provident_fund_rent": {"banks": ["ceb"]}}})
    agent = actor(rt, "agent")
    city = rt.cities.get("370100").product("provident_fund_rent")
    form = sample_form(city, rt.products.get("provident_fund_rent"), {"monthly_rent": "1500"})
    rent = deals.create_deal(rt, agent, "370100", "provident_fund_rent", form)
    deals.confirm_agreement(rt, agent, rent)
    open_account(client, keys_dir, rt, rent, "6226000000000901")
    body = notification(
        "funds_arrived",
        bank_reference="PF-2800",
        account_no="6226000000000901",
        amount_fen=2800_00,
        payer_name="济南住房公积金管理中心",
        payer_account="6226620012349999",
        arrived_at="2026-11-23T08:00:00Z",
    )
    assert post_callback(client, keys_dir, body)[0] == 200
    assert load_deal(rt, rent).state == "rent_held"
    page = login("agent").get(f"/deals/{rent}").text
    assert "足额到账" not in page
    assert "公积金划款到账" in page and "到账 ¥2,800.00（应付 ¥1,500.00，多出 ¥1,300.00 结清时原路退回）" in page

    resale = confirmed_deal(rt)
    open_account(client, keys_dir, rt, resale, "6226000000000902")
    arrive(client, keys_dir, "6226000000000902", 500_00, "REF-PART")
    page = login("agent").get(f"/deals/{resale}").text
    assert "到账 ¥500.00（应付 ¥1,234,567.89，尚差 ¥1,234,067.89）" in page
