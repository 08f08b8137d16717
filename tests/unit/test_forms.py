"""The resale intake form and identity checks."""

from __future__ import annotations

import pytest

from app.domain.forms.resale import validate_resale_form
from app.domain.identity import id_check_char, is_valid_resident_id
from app.errors import ValidationError

VALID = {
    "buyer_name": "张三",
    "buyer_id_number": "11010519491231002X",
    "buyer_bank_name": "中国光大银行北京分行",
    "buyer_bank_account": "6226 6200 1234 5678",
    "seller_name": "李四",
    "seller_id_number": "110101198001010053",
    "seller_bank_name": "中国工商银行北京分行",
    "seller_bank_account": "6222020200112233445",
    "property_address": "北京市朝阳区建国路 1 号 1 单元 101",
    "certificate_no": "京(2024)朝阳区不动产权第0001234号",
    "price": "3,500,000",
    "custody_amount": "1234567.89",
}


def test_valid_form_is_cleaned_to_fen_and_digits() -> None:
    clean = validate_resale_form(VALID)
    assert clean["price_fen"] == 350_000_000
    assert clean["custody_amount_fen"] == 123_456_789
    assert clean["buyer_bank_account"] == "6226620012345678"


@pytest.mark.parametrize(
    ("field", "value", "message_part"),
    [
        ("buyer_id_number", "110105194912310021", "校验位"),
        ("seller_id_number", "110101198013010053", "出生日期"),
        ("buyer_bank_account", "12345", "12 到 30 位"),
        ("price", "12.345", "最多两位小数"),
        ("custody_amount", "0", "大于零"),
        ("custody_amount", "3500000.01", "不能超过成交价"),
        ("buyer_name", "", "请填写买方姓名"),
    ],
)
def test_each_error_is_reported_next_to_its_field_in_chinese(field: str, value: str, message_part: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_resale_form({**VALID, field: value})
    assert message_part in caught.value.details[field]
    assert set(caught.value.details) == {field}


def test_all_errors_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_resale_form({})
    assert len(caught.value.details) == 12


def test_buyer_and_seller_must_differ() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_resale_form({**VALID, "seller_id_number": VALID["buyer_id_number"]})
    assert "同一人" in caught.value.details["seller_id_number"]


def test_resident_id_check_character() -> None:
    assert id_check_char("11010519491231002") == "X"
    assert is_valid_resident_id("11010519491231002x")
    assert not is_valid_resident_id("11010519491231002")
    assert not is_valid_resident_id("21010519491231002X")
