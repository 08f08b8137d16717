"""The resale-escrow intake form: the generated form (base schema + the city's extra fields), cleaned to
the columns of a deal."""

from __future__ import annotations

from typing import Any

from app.domain.cities import FormSpec
from app.domain.forms.schema_form import build_form, load_base_schema

PRODUCT = "resale_escrow"
DEAL_FIELDS = (
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
OPTIONAL_DEAL_FIELDS = ("buyer_phone", "seller_phone")


def validate_resale_form(
    form: dict[str, str], city_form: FormSpec | None = None, base_form: str = PRODUCT
) -> dict[str, Any]:
    """The deal's columns (amounts as *_fen) from the resale form or a variant's `base_form` with the same
    fields (new-home supervision). Raises ValidationError with every field's error, including disagreement
    with the sales contract section."""
    clean = build_form(base_form, load_base_schema(base_form), city_form).validate(form)
    return {
        **{name: clean[name] for name in DEAL_FIELDS},
        **{name: clean.get(name) or None for name in OPTIONAL_DEAL_FIELDS},
        "price_fen": clean["price"],
        "custody_amount_fen": clean["custody_amount"],
    }
