"""Issue 17 (extra fields) and 19 (agreements carry their deal's facts), end to end through the services: a
resale deal in a city whose form adds 房屋面积 (a decimal number) and a guarantor's ID number keeps them (the
ID number only encrypted), shows them with their labels on the agent's and the console's deal page, and prints
them in its agreement under 附加信息 and by name in a clause; every product's agreement states the facts its
intake form collected, and never None."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, DictLoader, FileSystemLoader
from sqlalchemy import text

from app.agreements.service import render_html
from app.db.models import Deal
from app.deals import service as deals
from app.deals.sample_forms import ADDRESS, sample_form
from app.domain.identity import id_check_char
from app.domain.money import format_yuan, parse_yuan, to_chinese_upper
from app.pdf import render
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from tests.factories import RESALE_FORM, actor, load_deal, patch_city

GUARANTOR_ID = "37010219800101" + "123" + id_check_char("37010219800101123")
HOUSE_AREA = {
    "sections": ["房屋"],
    "schema": {
        "required": ["house_area"],
        "properties": {
            "house_area": {"type": "number", "title": "房屋面积", "x-section": "房屋", "x-order": 10, "minimum": 1},
            "guarantor_id": {
                "type": "string",
                "title": "担保人身份证号",
                "x-section": "房屋",
                "x-order": 11,
                "x-widget": "id_number",
            },
            "floor": {"type": "integer", "title": "所在楼层", "x-section": "房屋", "x-order": 12},
        },
    },
}


def _with_dispute_clause(source: str) -> Callable[[object], object]:
    loader = ChoiceLoader([DictLoader({"clauses/dispute.html.j2": source}), FileSystemLoader(render.TEMPLATES_ROOT)])
    return lambda _source: render.agreement_environment(loader)


def test_a_resale_extra_decimal_is_stored_shown_and_printed(
    rt: Runtime, login: Callable[[str], FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    patch_city(rt, "110000", {"products": {"resale_escrow": {"form": HOUSE_AREA}}})
    agent = actor(rt, "agent")
    with pytest.raises(ValidationError) as caught:
        deals.create_deal(rt, agent, "110000", "resale_escrow", {**RESALE_FORM, "house_area": "0.99"})
    assert caught.value.details == {"house_area": "房屋面积不能小于 1"}
    form = {**RESALE_FORM, "house_area": "89.37", "guarantor_id": GUARANTOR_ID, "floor": "12"}
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", form)

    deal = load_deal(rt, deal_id)
    with rt.db.uow() as uow:
        stored = uow.session.get_one(Deal, deal_id).extra_fields
        raw = uow.session.execute(text("SELECT extra_fields, facts FROM deals WHERE id = :id"), {"id": deal_id}).one()
    assert json.loads(stored or "") == {"house_area": "89.37", "guarantor_id": GUARANTOR_ID, "floor": 12}
    assert deal.facts["house_area"] == "89.37" and deal.facts["floor"] == 12 and "guarantor_id" not in deal.facts
    assert "89.37" not in str(raw[0]) and GUARANTOR_ID not in str(raw[0]) + str(raw[1]), "encrypted at rest"

    masked_id = GUARANTOR_ID[:3] + "*" * 11 + GUARANTOR_ID[-4:]
    for page in (login("agent").get(f"/deals/{deal_id}").text, login("ops").get(f"/admin/deals/{deal_id}").text):
        assert "房屋面积" in page and "89.37" in page and "所在楼层" in page
        assert masked_id in page and GUARANTOR_ID not in page

    monkeypatch.setattr(render, "_environment", _with_dispute_clause("<p>房屋面积为{{ extra.house_area }}平方米。</p>"))
    with rt.db.uow() as uow:
        html = render_html(rt, uow.session.get_one(Deal, deal_id))
    assert "附加信息" in html and "房屋面积" in html and "89.37" in html
    assert "房屋面积为89.37平方米。" in html
    assert masked_id in html and GUARANTOR_ID not in html
    assert html.index("房屋面积</th>") < html.index("担保人身份证号") < html.index("所在楼层"), "in x-order"
    assert "None" not in html


def _figures(form: dict[str, str], name: str) -> tuple[str, str]:
    fen = parse_yuan(form[name])
    return format_yuan(fen), to_chinese_upper(fen)


# (city, product, intake values beyond the simulation's sample, what the agreement must print)
PRODUCTS: dict[str, tuple[str, dict[str, str], Callable[[dict[str, str]], list[str]]]] = {
    "resale_escrow": ("110000", {}, lambda f: [ADDRESS, *_figures(f, "price"), *_figures(f, "custody_amount"), "全款"]),
    "gov_escrow": (
        "330100",
        {},
        lambda f: [ADDRESS, "SIM-GOV-0000001", *_figures(f, "price"), "付款方式：全款", *_figures(f, "custody_amount")],
    ),
    "rent_custody": (
        "110000",
        {
            "lease_contract_no": "ZL-2026-0001",
            "monthly_rent_fen": "3000",
            "lease_months": "12",
            "months_per_installment": "3",
            "deposit_fen": "6000",
        },
        lambda f: [
            f"租赁房屋坐落：{ADDRESS}",
            "ZL-2026-0001",
            '月租金：<span class="figure">¥3,000.00</span>（大写：<span class="upper">叁仟元整',
            "租期：自2026年1月10日起至2027年1月9日止，共12个月",
            "每3个月支付一次",
            '押金：<span class="figure">¥6,000.00</span>（大写：<span class="upper">陆仟元整',
        ],
    ),
    "provident_fund_rent": (
        "370100",
        {},
        lambda f: [
            f"租赁房屋坐落：{ADDRESS}",
            *_figures(f, "monthly_rent"),
            "租期：自2026年1月10日起至2027年1月9日止，共12个月",
            "本协议不托管押金",
        ],
    ),
    "renovation_escrow": (
        "310000",
        {},
        lambda f: [
            f"装修房屋坐落：{ADDRESS}",
            *_figures(f, "contract_amount"),
            *_figures(f, "custody_amount"),
            "放款计划：",
            "第一期　水电验收（30%）：业主验收通过后释放",
        ],
    ),
    "intent_deposit": (
        "310000",
        {},
        lambda f: [
            f"意向房屋坐落：{ADDRESS}",
            *_figures(f, "deposit_amount"),
            "意向书签订日：2026年1月2日；意向有效期至：2026年2月2日",
        ],
    ),
    "guarantee_release": (
        "370200",
        {},
        lambda f: ["示例建设工程有限公司", *_figures(f, "freeze_amount"), "冻结起始日：2026年1月5日"],
    ),
}


@pytest.mark.parametrize("product", PRODUCTS)
def test_every_products_agreement_states_its_deals_facts(rt: Runtime, users: dict[str, int], product: str) -> None:
    city_code, values, expected = PRODUCTS[product]
    patch_city(rt, city_code, {"products": {product: {"banks": ["ceb"]}}})  # the bank the tests' runtime has
    form = sample_form(rt.cities.get(city_code).product(product), rt.products.get(product), values)
    deal_id = deals.create_deal(rt, actor(rt, "agent"), city_code, product, form)
    with rt.db.uow() as uow:
        html = render_html(rt, uow.session.get_one(Deal, deal_id))
    missing = [fact for fact in expected(form) if fact not in html]
    assert missing == [], missing
    assert "None" not in html
