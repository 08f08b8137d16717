"""From a product's cleaned intake form to a deal: its columns and its case facts.

Every product keeps its paying party (buyer, tenant, owner, applicant) in the deal's buyer_* columns and its
receiving party (seller, landlord, contractor) in seller_*; `price_fen` is what the contract is worth and
`custody_amount_fen` what must arrive before the workflow moves on. Whatever else the form (and the city's
extra fields) carries that is not a person's data becomes a case fact the workflow's building blocks read
(amounts in fen, dates as ISO text, decimals as text); the city's extra fields are also kept whole, personal
data included, in the encrypted column `extra_fields` (`app.domain.extra_fields`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.domain.cities import FormSpec
from app.domain.extra_fields import extras_json, field_format, personal_kind, stored
from app.domain.rent import plan_rent
from app.platform.errors import ValidationError

Clean = Mapping[str, Any]


@dataclass(frozen=True)
class DealFields:
    columns: dict[str, Any]
    facts: dict[str, Any]


def _required(clean: Clean, name: str) -> Any:
    value = clean.get(name)
    if value is None or value == "":
        raise ValidationError(
            "本城市该业务的表单缺少必要字段，请联系运营检查城市配置",
            code="PRODUCT_FIELD_MISSING",
            details={"field": name},
        )
    return value


def _party(prefix: str, clean: Clean, **names: str) -> dict[str, Any]:
    """The deal columns `<prefix>_name`, `_id_number`, `_phone`, `_bank_name`, `_bank_account` from the
    form fields given as keyword arguments (a field the product lacks stays empty)."""
    return {f"{prefix}_{column}": clean.get(field) or None for column, field in names.items()}


# the resale form's fields kept as deal columns under the same name (phones may be left empty)
RESALE_COLUMNS = (
    "buyer_name",
    "buyer_id_number",
    "buyer_bank_name",
    "buyer_bank_account",
    "seller_name",
    "seller_id_number",
    "seller_bank_name",
    "seller_bank_account",
    "property_address",
    "certificate_no",
)


def _resale_escrow(clean: Clean, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    columns = {
        **{name: clean[name] for name in RESALE_COLUMNS},
        "buyer_phone": clean.get("buyer_phone") or None,
        "seller_phone": clean.get("seller_phone") or None,
        "price_fen": clean["price"],
        "custody_amount_fen": clean["custody_amount"],
    }
    return columns, {}


def _rent_custody(clean: Clean, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    monthly = _required(clean, "monthly_rent_fen")
    months = _required(clean, "lease_months")
    per_installment = _required(clean, "months_per_installment")
    deposit = clean.get("deposit_fen") or 0
    if per_installment > months:
        raise ValidationError(
            "表单有误，请按提示修改",
            code="FORM_INVALID",
            details={"months_per_installment": "付款周期不能长于租期"},
        )
    plan = plan_rent(monthly, per_installment, deposit, params["rent_months_exempt"], params["deposit_months_exempt"])
    columns = {
        **_party("buyer", clean, name="tenant_name", id_number="tenant_id_number", phone="tenant_phone"),
        **_party(
            "seller",
            clean,
            name="landlord_name",
            id_number="landlord_id_number",
            phone="landlord_phone",
            bank_account="landlord_bank_card",
        ),
        "property_address": clean["property_address"],
        "certificate_no": clean.get("lease_contract_no"),
        "price_fen": monthly * months + deposit,
        "custody_amount_fen": plan.move_in_custody_fen,
    }
    facts = {
        "custody_per_installment_fen": plan.custody_per_installment_fen,
        "custody_per_month_fen": plan.custody_per_month_fen,
        "deposit_custody_fen": plan.deposit_custody_fen,
    }
    return columns, facts


def _provident_fund_rent(clean: Clean, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fund centre pays one month at a time; all of it is released to the landlord, nothing held back."""
    monthly = _required(clean, "monthly_rent")
    months = clean.get("lease_months") or 12
    columns = {
        **_party("buyer", clean, name="tenant_name", id_number="tenant_id_number", phone="tenant_phone"),
        **_party(
            "seller", clean, name="landlord_name", id_number="landlord_id_number", bank_account="landlord_bank_card"
        ),
        "property_address": clean.get("property_address"),
        "certificate_no": clean.get("fund_account_no"),
        "price_fen": monthly * months,
        "custody_amount_fen": monthly,
    }
    facts = {
        "monthly_rent_fen": monthly,
        "lease_months": months,
        "custody_per_installment_fen": monthly,
        "custody_per_month_fen": monthly,
        "deposit_custody_fen": 0,
    }
    return columns, facts


def _renovation_escrow(clean: Clean, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    columns = {
        **_party("buyer", clean, name="owner_name", id_number="owner_id_number", phone="owner_phone"),
        **_party(
            "seller",
            clean,
            name="contractor_name",
            id_number="contractor_uscc",
            bank_account="contractor_bank_account",
        ),
        "property_address": clean["property_address"],
        "certificate_no": clean.get("contract_no"),
        "price_fen": clean["contract_amount"],
        "custody_amount_fen": clean["custody_amount"],
    }
    return columns, {}


def _gov_escrow(clean: Clean, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    columns = {
        **_party("buyer", clean, name="buyer_name", id_number="buyer_id_number", phone="buyer_phone"),
        **_party(
            "seller",
            clean,
            name="seller_name",
            id_number="seller_id_number",
            phone="seller_phone",
            bank_account="seller_bank_account",
        ),
        "property_address": clean["contract_property_address"],
        "certificate_no": clean["contract_no"],
        "price_fen": clean["price"],
        "custody_amount_fen": clean["custody_amount"],
    }
    return columns, {}


def _intent_deposit(clean: Clean, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The developer the deposit goes to once the purchase is signed is named, with its account, in the
    agreement (the receiving party)."""
    columns = {
        **_party("buyer", clean, name="buyer_name", id_number="buyer_id_number", phone="buyer_phone"),
        **_party(
            "seller", clean, name="developer_name", id_number="developer_uscc", bank_account="developer_bank_account"
        ),
        "property_address": clean["property_address"],
        "price_fen": clean["deposit_amount"],
        "custody_amount_fen": clean["deposit_amount"],
    }
    return columns, {"payee": "seller"}


def _guarantee_release(clean: Clean, params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The applicant's own money is frozen at the bank; a claim pays the beneficiary the agreement names."""
    id_number = clean.get("applicant_id_number") or clean.get("applicant_uscc")
    columns = {
        **_party("buyer", clean, name="applicant_name", phone="applicant_phone"),
        **_party("seller", clean, name="beneficiary_name", bank_account="beneficiary_bank_account"),
        "buyer_id_number": id_number,
        "price_fen": clean["freeze_amount"],
        "custody_amount_fen": clean["freeze_amount"],
    }
    return columns, {"guarantee_fen": clean["freeze_amount"], "payee": "seller"}


MAPPERS: dict[str, Callable[[Clean, Mapping[str, Any]], tuple[dict[str, Any], dict[str, Any]]]] = {
    "resale_escrow": _resale_escrow,
    "rent_custody": _rent_custody,
    "provident_fund_rent": _provident_fund_rent,
    "renovation_escrow": _renovation_escrow,
    "gov_escrow": _gov_escrow,
    "intent_deposit": _intent_deposit,
    "guarantee_release": _guarantee_release,
}


# fields about people, their accounts, addresses and contract numbers live in the deal's encrypted columns (or
# nowhere), never in the facts (plain JSON); so does a city's extra field whose format is a person's data
PERSONAL_SUFFIXES = (
    "_name",
    "_id_number",
    "_phone",
    "_bank_card",
    "_bank_account",
    "_uscc",
    "_account_no",
    "_address",
    "_no",
)


def _personal_extras(form: FormSpec | None) -> set[str]:
    if form is None:
        return set()
    return {f.name for f in form.fields if personal_kind(field_format(f))}


def deal_fields(base: str, clean: Clean, params: Mapping[str, Any], form: FormSpec | None = None) -> DealFields:
    """The deal's columns and case facts by the rules of `base` product; `params` are the workflow parameters
    resolved for the city, `form` the city's extra fields (kept whole in the encrypted column `extra_fields`)."""
    columns, facts = MAPPERS[base](clean, params)
    personal = _personal_extras(form)
    extra = {
        name: stored(value)
        for name, value in clean.items()
        if value not in (None, "") and not name.endswith(PERSONAL_SUFFIXES) and name not in personal
    }
    return DealFields(columns={**columns, "extra_fields": extras_json(form, clean)}, facts={**extra, **facts})
