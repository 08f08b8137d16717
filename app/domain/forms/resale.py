"""The resale-escrow intake form: field definitions (for rendering) and validation (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from app.domain.identity import is_plausible_bank_account, is_valid_resident_id
from app.domain.money import parse_yuan
from app.errors import ValidationError


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str  # text | id_number | bank_account | yuan
    section: str
    placeholder: str = ""
    max_length: int = 64


SECTIONS = ("买方", "卖方", "房屋", "金额")

FIELDS: tuple[Field, ...] = (
    Field("buyer_name", "买方姓名", "text", "买方", "张三"),
    Field("buyer_id_number", "买方身份证号", "id_number", "买方", "18 位身份证号", 18),
    Field("buyer_bank_name", "买方开户行", "text", "买方", "中国光大银行北京分行"),
    Field("buyer_bank_account", "买方银行账号", "bank_account", "买方", "用于退款（原路退回）", 30),
    Field("seller_name", "卖方姓名", "text", "卖方", "李四"),
    Field("seller_id_number", "卖方身份证号", "id_number", "卖方", "18 位身份证号", 18),
    Field("seller_bank_name", "卖方开户行", "text", "卖方", "中国工商银行北京分行"),
    Field("seller_bank_account", "卖方银行账号", "bank_account", "卖方", "放款收款账户", 30),
    Field("property_address", "房屋坐落", "text", "房屋", "北京市朝阳区……", 200),
    Field("certificate_no", "不动产权证书号", "text", "房屋", "京(2024)朝阳区不动产权第0001234号"),
    Field("price", "成交价（元）", "yuan", "金额", "例如 3,500,000.00", 20),
    Field("custody_amount", "存管金额（元）", "yuan", "金额", "不超过成交价", 20),
)


def _check(field: Field, raw: str) -> tuple[Any, str | None]:
    if not raw:
        return None, f"请填写{field.label}"
    if len(raw) > field.max_length:
        return None, f"{field.label}不能超过 {field.max_length} 个字符"
    if field.kind == "id_number":
        value = raw.upper()
        return value, None if is_valid_resident_id(value) else "身份证号无效（请检查位数、出生日期和校验位）"
    if field.kind == "bank_account":
        value = re.sub(r"\s+", "", raw)
        return value, None if is_plausible_bank_account(value) else "银行账号应为 12 到 30 位数字"
    if field.kind == "yuan":
        try:
            amount_fen = parse_yuan(raw)
        except ValidationError as error:
            return None, error.message
        return amount_fen, None if amount_fen > 0 else "金额必须大于零"
    if field.name.endswith("_name") and len(raw) < 2:
        return raw, f"{field.label}至少 2 个字"
    return raw, None


def validate_resale_form(form: dict[str, str]) -> dict[str, Any]:
    """Clean values keyed by field name (amounts as *_fen). Raises ValidationError with every field's error."""
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in FIELDS:
        value, error = _check(field, (form.get(field.name) or "").strip())
        if error:
            errors[field.name] = error
        else:
            clean[field.name] = value
    if "price" in clean and "custody_amount" in clean and clean["custody_amount"] > clean["price"]:
        errors["custody_amount"] = "存管金额不能超过成交价"
    if not errors and clean["buyer_id_number"] == clean["seller_id_number"]:
        errors["seller_id_number"] = "买卖双方不能是同一人"
    if errors:
        raise ValidationError("表单有误，请按提示修改", code="FORM_INVALID", details=errors)
    clean["price_fen"] = clean.pop("price")
    clean["custody_amount_fen"] = clean.pop("custody_amount")
    return clean
