"""Generated intake forms: format checkers, conditional fields, consistency across sections, yuan → fen."""

from __future__ import annotations

from datetime import date

import pytest

from app.domain.cities import CityCatalog, FormField, FormSpec
from app.domain.forms.formats import FORMATS, normalize_date
from app.domain.forms.schema_form import build_form, load_base_schema
from app.domain.identity import id_check_char, is_valid_resident_id, is_valid_uscc, luhn_ok
from app.platform.config import ROOT
from app.platform.errors import ConfigError, ValidationError
from tests.factories import RESALE_FORM, resale_columns

VALID = {key: value for key, value in RESALE_FORM.items() if key not in ("city_code", "product")}


def _errors(form: dict[str, str], city_form: FormSpec | None = None) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        resale_columns(form, city_form)
    return caught.value.details


def _ok(name: str, typed: str) -> bool:
    fmt = FORMATS[name]
    return fmt.check(fmt.normalize(typed))


@pytest.mark.parametrize(
    ("fmt", "typed", "valid"),
    [
        ("cn-resident-id", "11010519491231002X", True),  # check character X
        ("cn-resident-id", "11010519491231002x", True),  # typed in lower case
        ("cn-resident-id", "110101198001010053", True),
        ("cn-resident-id", "110105194912310021", False),  # wrong check character
        ("cn-resident-id", "110101198013010053", False),  # month 13
        ("cn-resident-id", "11010519491231002", False),  # 17 characters
        ("cn-uscc", "91350100M000100Y43", True),  # letters in the organization code
        ("cn-uscc", "91330106MA2CFX7K1J", True),  # letter check character
        ("cn-uscc", "91440300708461136T", True),
        ("cn-uscc", "91350100M000100Y44", False),  # wrong check character
        ("cn-uscc", "91350100M000100Y33", False),  # organization code check character wrong
        ("cn-uscc", "91350100I000100Y43", False),  # I is not in the GB 32100 alphabet
        ("cn-mobile", "13812345678", True),
        ("cn-mobile", "+86 138-1234-5678", True),
        ("cn-mobile", "12812345678", False),
        ("cn-mobile", "1381234567", False),
        ("bank-card", "6222 6002 6000 1072 444", True),
        ("bank-card", "4111111111111111", True),
        ("bank-card", "6217000010001234567", False),  # Luhn digit off by two
        ("bank-card", "622260026000107", False),  # 15 digits
        ("bank-account", "6226620012345678", True),
        ("bank-account", "12345", False),
        ("date", "2026-11-23", True),
        ("date", "2026/2/3", True),
        ("date", "2026年2月3日", True),
        ("date", "2026-02-30", False),
        ("date", "23.11.2026", False),
    ],
)
def test_format_checkers(fmt: str, typed: str, valid: bool) -> None:
    assert _ok(fmt, typed) is valid


def test_check_characters() -> None:
    assert id_check_char("11010519491231002") == "X"
    assert is_valid_resident_id("11010519491231002x")
    assert not is_valid_resident_id("21010519491231002X")
    assert is_valid_uscc(" 91350100m000100y43 ")
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert normalize_date("2026.1.5") == "2026-01-05"


def test_valid_form_is_cleaned_to_fen_and_digits() -> None:
    clean = resale_columns({**VALID, "price": "3,500,000", "buyer_bank_account": "6226 6200 1234 5678"})
    assert clean["price_fen"] == 350_000_000
    assert clean["custody_amount_fen"] == 123_456_789
    assert clean["buyer_bank_account"] == "6226620012345678"
    assert "contract_no" not in clean, "only the deal's columns"


@pytest.mark.parametrize(
    ("field", "value", "message_part"),
    [
        ("buyer_id_number", "110105194912310021", "校验位"),
        ("seller_id_number", "110101198013010053", "出生日期"),
        ("buyer_bank_account", "12345", "12 到 30 位"),
        ("price", "12.345", "最多两位小数"),
        ("price", "abc", "金额格式不正确"),
        ("custody_amount", "0", "大于零"),
        ("custody_amount", "3500000.01", "不能超过成交价"),
        ("buyer_name", "", "请填写买方姓名"),
        ("payment_method", "", "请选择付款方式"),
        ("payment_method", "分期", "请选择付款方式"),
        ("contract_signed_on", "2026-02-30", "有效日期"),
        ("certificate_no", "京" * 65, "不能超过 64 个字符"),
    ],
)
def test_each_error_is_reported_next_to_its_field_in_chinese(field: str, value: str, message_part: str) -> None:
    errors = _errors({**VALID, field: value})
    assert message_part in errors[field]
    assert set(errors) == {field}


def test_yuan_amounts_become_fen() -> None:
    form = build_form("resale_escrow", load_base_schema("resale_escrow"), None)
    clean = form.validate({**VALID, "price": "¥1,000,000.5", "custody_amount": "0.01"})
    assert (clean["price"], clean["custody_amount"]) == (100_000_050, 1)
    assert clean["contract_signed_on"] == date(2026, 11, 20)


def test_all_errors_at_once() -> None:
    assert len(_errors({})) == 18


def test_mortgage_fields_only_when_loan_is_chosen() -> None:
    form = build_form("resale_escrow", load_base_schema("resale_escrow"), None)
    loan_bank = form.field("loan_bank")
    assert loan_bank.condition is not None and loan_bank.condition.value == "贷款" and not loan_bank.required
    errors = _errors({**VALID, "payment_method": "贷款"})
    assert errors == {"loan_bank": "请填写贷款银行", "loan_amount": "请填写贷款金额（元）"}
    typed_then_cash = form.validate({**VALID, "loan_bank": "建行", "loan_amount": "x"})
    assert "loan_bank" not in typed_then_cash and "loan_amount" not in typed_then_cash, "hidden fields are dropped"
    clean = form.validate({**VALID, "payment_method": "贷款", "loan_bank": "中国建设银行", "loan_amount": "2000000"})
    assert clean["loan_amount"] == 200_000_000
    assert (
        "应小于成交价"
        in _errors({**VALID, "payment_method": "贷款", "loan_bank": "建行", "loan_amount": "3500000"})["loan_amount"]
    )


def test_second_conditional_pair_in_another_product() -> None:
    form = build_form("guarantee_release", load_base_schema("guarantee_release"), None)
    base = {"applicant_name": "某某公司", "applicant_phone": "13812345678", "freeze_amount": "100"}
    base |= {"freeze_from": "2026-11-23", "beneficiary_name": "某某银行"}
    base["beneficiary_bank_account"] = "6222600260001072444"
    with pytest.raises(ValidationError) as caught:
        form.validate({**base, "applicant_kind": "企业", "applicant_id_number": "bad"})
    assert caught.value.details == {"applicant_uscc": "请填写统一社会信用代码"}
    assert form.validate({**base, "applicant_kind": "企业", "applicant_uscc": "91350100M000100Y43"})["applicant_uscc"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("buyer_name", "王五", "买方姓名与网签合同的买受人不一致"),
        ("seller_name", "赵六", "卖方姓名与网签合同的出卖人不一致"),
        ("property_address", "北京市海淀区中关村1号", "房屋坐落与网签合同不一致"),
        ("seller_id_number", VALID["buyer_id_number"], "买卖双方不能是同一人"),
    ],
)
def test_sections_must_agree_with_the_sales_contract(field: str, value: str, message: str) -> None:
    assert _errors({**VALID, field: value}) == {field: message}


def test_consistency_ignores_spacing_and_full_width_characters() -> None:
    clean = resale_columns({**VALID, "property_address": "北京市朝阳区建国路１号 1单元 101"})
    assert clean["property_address"] == "北京市朝阳区建国路１号 1单元 101"


def test_city_fields_join_the_form_in_their_sections_with_their_hints() -> None:
    extra = FormSpec(
        ("网签合同", "本市要求"),
        (
            FormField(
                "agent_phone", "经纪人手机", "本市要求", 1, True, "便于监管部门联系", "phone", {"type": "string"}
            ),
            FormField("district", "区县", "本市要求", 2, False, "", None, {"type": "string", "enum": ["朝阳", "海淀"]}),
            FormField("deposit_months", "押金月数", "本市要求", 3, False, "", None, {"type": "integer", "maximum": 3}),
        ),
    )
    form = build_form("resale_escrow", load_base_schema("resale_escrow"), extra)
    assert [s.title for s in form.sections][-1] == "本市要求"
    phone = form.field("agent_phone")
    assert (phone.widget, phone.format, phone.help, phone.input_type) == (
        "phone",
        "cn-mobile",
        "便于监管部门联系",
        "tel",
    )
    assert form.field("district").widget == "select" and form.field("district").options == ("朝阳", "海淀")
    errors = _errors({**VALID, "agent_phone": "123", "district": "西城", "deposit_months": "5"}, extra)
    assert errors == {
        "agent_phone": "经纪人手机应为 11 位手机号码，以 13–19 开头",
        "district": "请选择区县",
        "deposit_months": "押金月数不能大于 3",
    }
    assert resale_columns({**VALID, "agent_phone": "13812345678"}, extra)["buyer_name"] == "张三"


def test_city_field_may_not_reuse_a_base_name() -> None:
    clash = FormSpec(("房屋",), (FormField("price", "价格", "房屋", 9, True, schema={"type": "string"}),))
    with pytest.raises(ConfigError) as caught:
        build_form("resale_escrow", load_base_schema("resale_escrow"), clash)
    assert caught.value.code == "FORM_FIELD_CLASH"


def test_every_product_has_a_base_form_that_builds_with_the_virtual_citys_fields() -> None:
    virtual = CityCatalog(ROOT / "city_configs").load("_virtual")
    for product, config in virtual.products.items():
        form = build_form(product, load_base_schema(product), config.form)
        assert form.title and form.sections, product
        assert all(f.label and f.widget for f in form.fields), product
