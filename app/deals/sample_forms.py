"""Sample intake forms, for the simulation (`app.sandbox`) and the studio's previews of a draft: a small
hand-written sample of each product's base form, merged with values generated for whatever the city adds (its
extra fields, from their schema: enum, widget, format, pattern, bounds). The result is checked by the product's
own form validation; a city whose form cannot be filled is reported, not guessed around."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.banks.registry import configured_banks
from app.domain.cities import ProductConfig
from app.domain.custody_limits import CUSTODY_FIELDS
from app.domain.forms.schema_form import FieldSpec, SchemaForm, build_form, load_base_schema
from app.domain.money import format_yuan, parse_yuan
from app.domain.products import ProductVariant
from app.platform.errors import ValidationError

BUYER = {"name": "张三", "id_number": "11010519491231002X", "phone": "13912345678", "account": "6226620012345678"}
SELLER = {"name": "李四", "id_number": "110101198001010053", "phone": "13812345678", "account": "6222600260001072444"}
ADDRESS = "仿真市仿真路1号1单元101"

# a hand-written sample of each base intake form (by form name: a product's declaration names its form)
SAMPLE_FORMS: dict[str, dict[str, str]] = {
    "resale_escrow": {
        "contract_no": "SIM-0000001",
        "contract_signed_on": "2026-01-02",
        "contract_buyer_name": BUYER["name"],
        "contract_seller_name": SELLER["name"],
        "contract_property_address": ADDRESS,
        "payment_method": "全款",
        "buyer_name": BUYER["name"],
        "buyer_id_number": BUYER["id_number"],
        "buyer_bank_name": configured_banks()["ceb"].name,
        "buyer_bank_account": BUYER["account"],
        "seller_name": SELLER["name"],
        "seller_id_number": SELLER["id_number"],
        "seller_bank_name": configured_banks()["icbc"].name,
        "seller_bank_account": SELLER["account"],
        "property_address": ADDRESS,
        "certificate_no": "仿(2026)不动产权第0000001号",
        "price": "3500000",
        "custody_amount": "1234567.89",
    },
    "gov_escrow": {
        "contract_no": "SIM-GOV-0000001",
        "contract_property_address": ADDRESS,
        "price": "3500000",
        "payment_method": "全款",
        "buyer_name": BUYER["name"],
        "buyer_id_number": BUYER["id_number"],
        "buyer_phone": BUYER["phone"],
        "seller_name": SELLER["name"],
        "seller_id_number": SELLER["id_number"],
        "seller_phone": SELLER["phone"],
        "seller_bank_account": SELLER["account"],
        "custody_amount": "1234567.89",
    },
    "rent_custody": {
        "landlord_name": SELLER["name"],
        "landlord_id_number": SELLER["id_number"],
        "landlord_phone": SELLER["phone"],
        "landlord_bank_card": SELLER["account"],
        "tenant_name": BUYER["name"],
        "tenant_id_number": BUYER["id_number"],
        "tenant_phone": BUYER["phone"],
        "property_address": ADDRESS,
        "lease_starts_on": "2026-01-10",
    },
    "provident_fund_rent": {
        "tenant_name": BUYER["name"],
        "tenant_id_number": BUYER["id_number"],
        "tenant_phone": BUYER["phone"],
        "landlord_name": SELLER["name"],
        "landlord_id_number": SELLER["id_number"],
        "landlord_bank_card": SELLER["account"],
        "monthly_rent": "1500",
        "property_address": ADDRESS,
        "lease_starts_on": "2026-01-10",
        "lease_months": "12",
    },
    "renovation_escrow": {
        "owner_name": BUYER["name"],
        "owner_id_number": BUYER["id_number"],
        "owner_phone": BUYER["phone"],
        "property_address": ADDRESS,
        "contractor_uscc": "91350100M000100Y43",
        "contractor_bank_account": SELLER["account"],
        "contract_amount": "200000",
        "custody_amount": "150000",
    },
    "intent_deposit": {
        "buyer_name": BUYER["name"],
        "buyer_id_number": BUYER["id_number"],
        "buyer_phone": BUYER["phone"],
        "developer_name": "上海示例置业有限公司",
        "developer_uscc": "91350100M000100Y43",
        "developer_bank_account": SELLER["account"],
        "property_address": ADDRESS,
        "deposit_amount": "20000",
        "signed_on": "2026-01-02",
        "expires_on": "2026-02-02",
    },
    "guarantee_release": {
        "applicant_kind": "个人",
        "applicant_name": BUYER["name"],
        "applicant_id_number": BUYER["id_number"],
        "applicant_phone": BUYER["phone"],
        "beneficiary_name": "示例建设工程有限公司",
        "beneficiary_bank_account": SELLER["account"],
        "freeze_amount": "50000",
        "freeze_from": "2026-01-05",
    },
}
# new-home supervision: the resale sample with the developer (a company) as the receiving party
SAMPLE_FORMS["new_home_supervision"] = {
    **SAMPLE_FORMS["resale_escrow"],
    "contract_seller_name": "仿真房地产开发有限公司",
    "seller_name": "仿真房地产开发有限公司",
    "seller_id_number": "91350100M000100Y43",
    "certificate_no": "仿房管（2026）预字0000001号",
}
# what a city's extra field gets, by its format (or the format its widget implies)
BY_FORMAT = {
    "cn-resident-id": SELLER["id_number"],
    "cn-uscc": "91350100M000100Y43",
    "cn-mobile": SELLER["phone"],
    "bank-card": SELLER["account"],
    "bank-account": "6222020200112233445",
    "date": "2026-01-02",
}
GENERIC_TEXT = ("仿真数据", "SIM-0001", "20260001", "1")
MAX_ROUNDS = len(GENERIC_TEXT) + 1
# the contract price a typed custody amount may not exceed, by base product
PRICE_FIELDS = {"resale_escrow": "price", "gov_escrow": "price", "renovation_escrow": "contract_amount"}


def _candidates(field: FieldSpec) -> list[str]:
    """Values to try for a generated field, the likeliest first."""
    schema = field.schema
    if field.options:
        return list(field.options)
    if schema.get("type") == "boolean":
        return ["true"]
    if field.is_yuan:
        fen = max(int(schema.get("minimum", 0)), 100_000)
        return [f"{fen // 100}.{fen % 100:02d}"]
    if schema.get("type") == "number":
        low = schema.get("minimum", 1)
        return [str(value) for value in (max(low, 1), low) if value <= schema.get("maximum", value)]
    if schema.get("type") == "integer":
        low = int(schema.get("minimum", 1))
        return [str(value) for value in (max(low, 1), low) if value <= int(schema.get("maximum", value))]
    if field.format in BY_FORMAT:
        return [BY_FORMAT[field.format]]
    low, high = int(schema.get("minLength", 0)), int(schema.get("maxLength", 200))
    sized = ["仿" * max(low, 2)] if low > len(GENERIC_TEXT[0]) else []
    return [text for text in (*GENERIC_TEXT, *sized) if low <= len(text) <= high] or ["仿" * max(low, 1)]


def _within_custody_limits(product: ProductConfig, variant: ProductVariant, base: dict[str, str]) -> dict[str, str]:
    """The sample with its typed custody amount moved inside the city's custody limits (and the contract price
    raised to it when below); rent custody derives its amount from the lease and is left as it is."""
    name = CUSTODY_FIELDS[variant.base]
    if name not in base:
        return base
    typed = parse_yuan(base[name])
    limited = max(typed, product.custody.min_fen or 0)
    limited = limited if product.custody.max_fen is None else min(limited, product.custody.max_fen)
    if limited == typed:
        return base
    moved = {**base, name: format_yuan(limited, symbol=False)}
    price = PRICE_FIELDS.get(variant.base)
    if price is not None and parse_yuan(base[price]) < limited:
        moved[price] = moved[name]
    return moved


def product_form(
    product: ProductConfig, variant: ProductVariant, required_too: Mapping[str, str] | None = None
) -> SchemaForm:
    """The city's form of the product: its declared base form plus the city's extra fields (`required_too`: base
    fields made required, with their help text, e.g. the signing parties' phones)."""
    return build_form(variant.form, load_base_schema(variant.form), product.form, required_too)


def sample_form(
    product: ProductConfig, variant: ProductVariant, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A valid intake form of `product` for its city: the hand-written sample, generated values for the
    city's extra fields, then `overrides` (what a path implies, e.g. the lease length) for the fields the
    form has. Raises ValidationError when no valid form was found (the details name the fields)."""
    form = product_form(product, variant)
    base = _within_custody_limits(product, variant, SAMPLE_FORMS.get(variant.form, {}))
    generated = {field.name: _candidates(field) for field in form.fields if field.name not in base}
    tried = dict.fromkeys(generated, 0)
    for _ in range(MAX_ROUNDS):
        values = {name: options[min(tried[name], len(options) - 1)] for name, options in generated.items()}
        values |= {name: value for name, value in (overrides or {}).items() if name in values or name in base}
        raw = {**base, **values}
        try:
            form.validate(raw)
        except ValidationError as invalid:
            wrong = [name for name in invalid.details if name in generated and tried[name] + 1 < len(generated[name])]
            if not wrong:
                raise
            for name in wrong:
                tried[name] += 1
            continue
        return raw
    form.validate(raw)  # raises: the last attempt's problems
    return raw


def form_has(product: ProductConfig, variant: ProductVariant, name: str) -> bool:
    return any(field.name == name for field in product_form(product, variant).fields)


def parse_details(details: Any) -> str:
    """`ValidationError.details` of a form as one line: field: message; …"""
    if isinstance(details, Mapping):
        return "；".join(f"{name}：{message}" for name, message in details.items())
    return str(details)
