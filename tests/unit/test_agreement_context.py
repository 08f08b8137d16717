"""The agreement template context: formatted amounts, masked personal data, the date in Asia/Shanghai."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app.domain.agreement import (
    AgreementData,
    Party,
    agreement_context,
    mask_bank_account,
    mask_id_number,
    mask_phone,
)

BUYER = Party("张三", "110101199003071234", "中国工商银行", "6222 0212 3456 7890 123")
SELLER = Party("李四", "11010519851212567X", "中国建设银行", "6217001234567890")
DATA = AgreementData(
    agreement_no="BJ-2026-000123",
    city_name="北京",
    product_name="二手房交易资金存管",
    bank_name="中国光大银行",
    buyer=BUYER,
    seller=SELLER,
    property_address="北京市朝阳区建国路88号院3号楼12层1201",
    certificate_no="京(2020)朝阳区不动产权第0012345号",
    price_fen=123456789,
    custody_amount_fen=1000500,
    created_at=datetime(2026, 11, 23, 17, 0, tzinfo=UTC),
    account_no="9100012345678901",
)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("110101199003071234", "110***********1234"),
        ("11010519851212567X", "110***********567X"),
        ("1234567", "*******"),
    ],
)
def test_mask_id_number(value: str, masked: str) -> None:
    assert mask_id_number(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [("6217001234567890", "************7890"), ("6222 0212 3456 7890 123", "***************0123"), ("1234", "****")],
)
def test_mask_bank_account(value: str, masked: str) -> None:
    assert mask_bank_account(value) == masked


@pytest.mark.parametrize(("value", "masked"), [("13812345678", "138****5678"), ("138 1234 5678", "138****5678")])
def test_mask_phone(value: str, masked: str) -> None:
    assert mask_phone(value) == masked


def test_amounts_are_given_in_figures_and_uppercase() -> None:
    context = agreement_context(DATA)
    assert context["price"] == {"figure": "¥1,234,567.89", "upper": "壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分"}
    assert context["custody"] == {"figure": "¥10,005.00", "upper": "壹万零伍元整"}


def test_parties_are_masked() -> None:
    context = agreement_context(DATA)
    assert context["buyer"] == {
        "name": "张三",
        "id_number": "110***********1234",
        "bank_name": "中国工商银行",
        "bank_account": "***************0123",
    }
    assert context["seller"]["id_number"] == "110***********567X"
    assert context["seller"]["bank_account"] == "************7890"
    assert BUYER.id_number not in repr(context)
    assert SELLER.bank_account not in repr(context)


def test_created_date_is_the_calendar_day_in_shanghai() -> None:
    assert agreement_context(DATA)["created_date"] == "2026年11月24日"
    earlier = replace(DATA, created_at=datetime(2026, 11, 23, 15, 59, tzinfo=UTC))
    assert agreement_context(earlier)["created_date"] == "2026年11月23日"


def test_naive_created_at_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        agreement_context(replace(DATA, created_at=datetime(2026, 11, 23, 17, 0)))


def test_account_number_or_pending() -> None:
    assert agreement_context(DATA)["account_no"] == "9100012345678901"
    assert agreement_context(replace(DATA, account_no=None))["account_no"] == "待银行开立"


def test_property_and_institutions() -> None:
    context = agreement_context(DATA)
    assert context["property"] == {"address": DATA.property_address, "certificate_no": DATA.certificate_no}
    assert context["bank_name"] == "中国光大银行"
    assert context["platform_name"] == "存管平台"
    assert context["agreement_no"] == "BJ-2026-000123"


def test_the_template_manifest_says_which_party_fields_are_masked() -> None:
    from app.domain.agreement import MASKABLE, AgreementData, Party, agreement_context
    from app.pdf.render import template_masked_fields

    assert template_masked_fields("resale_escrow", "v1") == MASKABLE
    assert template_masked_fields("gov_escrow", "v1") == {"bank_account"}, "filed with the authority: full IDs"
    assert template_masked_fields("intent_deposit", "v1") == MASKABLE, "no manifest: mask everything"
    party = Party("张三", "11010519491231002X", "光大银行", "6226620012345678")
    data = AgreementData(
        agreement_no="A1",
        city_name="杭州",
        product_name="政府资金监管",
        bank_name="工商银行",
        buyer=party,
        seller=party,
        property_address="杭州市",
        certificate_no="浙(2026)1号",
        price_fen=100,
        custody_amount_fen=100,
        created_at=datetime(2026, 11, 23, tzinfo=UTC),
        account_no=None,
    )
    shown = agreement_context(data, frozenset({"bank_account"}))["buyer"]
    assert (shown["id_number"], shown["bank_account"]) == ("11010519491231002X", "************5678")
    hidden = agreement_context(data)["buyer"]
    assert hidden["id_number"] == "110***********002X"
