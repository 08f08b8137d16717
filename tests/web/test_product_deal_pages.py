"""Deal pages of products other than resale escrow name their parties as the product does, show what a
product lacks as not yet registered, and let ops fire the product's actions with their inputs."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from app.deals import service as deals
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import INTENT_FORM, actor, load_deal
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
