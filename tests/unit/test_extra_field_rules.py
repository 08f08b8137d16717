"""A city's extra form fields (issue 17): decimals where the schema says number, kept exactly; personal data
kept out of the plain facts; labels, order, formats and masks as screens and agreements show them; the deal's
facts an agreement prints (issue 19)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from app.domain.agreement_terms import deal_terms, lease_end
from app.domain.cities import FormField, FormSpec
from app.domain.extra_fields import extra_items, read_extras
from app.domain.forms.products import deal_fields
from app.domain.forms.schema_form import build_form, load_base_schema
from app.platform.errors import ValidationError
from tests.factories import RESALE_FORM

CARD = "6222600260001072444"
EXTRA = FormSpec(
    ("房屋",),
    (
        FormField("house_area", "房屋面积", "房屋", 10, True, schema={"type": "number", "minimum": 1}),
        FormField("agent_card", "经纪人银行卡号", "房屋", 11, False, widget="bank_card", schema={"type": "string"}),
        FormField("handover_on", "交房日", "房屋", 12, False, widget="date", schema={"type": "string"}),
        FormField("agency_fee", "中介费", "房屋", 13, False, widget="yuan", schema={"type": "integer"}),
        FormField("furnished", "带家具", "房屋", 14, False, widget="checkbox", schema={"type": "boolean"}),
        FormField("floor", "所在楼层", "房屋", 15, False, schema={"type": "integer"}),
        FormField("note", "备注", "房屋", 16, False, schema={"type": "string"}),
    ),
)
FORM = build_form("resale_escrow", load_base_schema("resale_escrow"), EXTRA)


def _clean(**extra: str) -> dict:
    return FORM.validate({**RESALE_FORM, "house_area": "89.37", **extra})


@pytest.mark.parametrize("typed", ["89.37", "89.370", "1", "0089.5"])
def test_a_number_field_takes_decimals_exactly(typed: str) -> None:
    assert _clean(house_area=typed)["house_area"] == Decimal(typed)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0.99", "房屋面积不能小于 1"),
        ("8.9e1", "房屋面积应为数字，例如 89.37"),
        ("八十", "房屋面积应为数字，例如 89.37"),
    ],
)
def test_a_number_field_refuses_what_is_not_a_decimal_in_bounds(typed: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _clean(house_area=typed)
    assert caught.value.details == {"house_area": message}


def test_integers_stay_integers_and_the_field_asks_for_a_decimal_keyboard() -> None:
    assert _clean(floor="12")["floor"] == 12
    with pytest.raises(ValidationError) as caught:
        _clean(floor="12.5")
    assert caught.value.details == {"floor": "所在楼层应为整数"}
    assert FORM.field("house_area").inputmode == "decimal"


def test_extras_are_kept_whole_and_personal_ones_stay_out_of_the_plain_facts() -> None:
    clean = _clean(agent_card=CARD, handover_on="2026-12-31", agency_fee="1,000.50", furnished="on", note="")
    fields = deal_fields("resale_escrow", clean, {}, EXTRA)
    kept = json.loads(fields.columns["extra_fields"])
    assert kept == {
        "house_area": "89.37",
        "agent_card": CARD,
        "handover_on": "2026-12-31",
        "agency_fee": 100050,
        "furnished": True,
    }
    assert fields.facts["house_area"] == "89.37" and fields.facts["agency_fee"] == 100050
    assert "agent_card" not in fields.facts
    assert not {"property_address", "contract_property_address", "certificate_no", "buyer_name"} & set(fields.facts)
    assert fields.columns["price_fen"] == 350_000_000 and fields.columns["buyer_name"] == RESALE_FORM["buyer_name"]
    assert deal_fields("resale_escrow", clean, {}).columns["extra_fields"] is None, "a city without extra fields"


def test_extras_read_with_labels_in_order_formatted_and_masked() -> None:
    stored = {"house_area": "89.37", "agent_card": CARD, "handover_on": "2026-12-31", "agency_fee": 100050}
    values = read_extras(json.dumps({**stored, "furnished": False, "floor": 3}))
    items = extra_items(EXTRA, values)
    assert [(item.label, item.text) for item in items] == [
        ("房屋面积", "89.37"),
        ("经纪人银行卡号", "**** 2444"),
        ("交房日", "2026年12月31日"),
        ("中介费", "¥1,000.50（大写：壹仟元伍角整）"),
        ("带家具", "否"),
        ("所在楼层", "3"),
        ("备注", ""),
    ]
    assert extra_items(EXTRA, values, masked=())[1].text == CARD
    assert extra_items(None, values) == ()


def test_the_lease_terms_an_agreement_prints() -> None:
    terms = deal_terms(
        {"lease_starts_on": "2026-01-31", "lease_months": 1, "monthly_rent_fen": 300000, "deposit_fen": 0}
    )
    assert terms["lease_starts_on"] == "2026年1月31日" and terms["lease_ends_on"] == "2026年2月27日"
    assert terms["monthly_rent"] == {"figure": "¥3,000.00", "upper": "叁仟元整"}
    assert terms["deposit"] == "" and terms["signed_on"] == "" and terms["payment_method"] == ""
    assert lease_end(date(2026, 1, 10), 12) == date(2027, 1, 9)
    assert all(value is not None for value in deal_terms({}).values())
