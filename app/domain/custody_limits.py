"""The city's custody limits (`products.*.custody.min_fen` / `max_fen`) on the custody amount a deal's
agreement names, checked wherever a deal is made: the intake form (web and the services behind it) and the
contract import. Money that arrives above the custody amount is not custody: it is returned by original route
under the product's existing rules (the excess refund after release, or the refund when the deal fails)."""

from __future__ import annotations

from app.domain.cities import CustodyLimits
from app.domain.money import format_yuan
from app.platform.errors import ValidationError

# the intake field each base product's custody amount is typed in (a variant types it where its base does; rent
# custody derives it from the lease fields: first installment and deposit, less what the city exempts)
CUSTODY_FIELDS = {
    "resale_escrow": "custody_amount",
    "gov_escrow": "custody_amount",
    "renovation_escrow": "custody_amount",
    "intent_deposit": "deposit_amount",
    "guarantee_release": "freeze_amount",
    "rent_custody": "monthly_rent_fen",
    "provident_fund_rent": "monthly_rent",
}
CUSTODY_LIMIT_CODES = ("CUSTODY_BELOW_MINIMUM", "CUSTODY_ABOVE_MAXIMUM")


def custody_limit_error(base: str, limits: CustodyLimits, custody_amount_fen: int) -> ValidationError | None:
    """Why `custody_amount_fen` is outside the city's limits for a product of `base` product (a Chinese message
    naming the limit in yuan, on the field the amount comes from), or None."""
    if limits.min_fen is not None and custody_amount_fen < limits.min_fen:
        message, code = f"托管金额不得低于 {format_yuan(limits.min_fen)}", CUSTODY_LIMIT_CODES[0]
    elif limits.max_fen is not None and custody_amount_fen > limits.max_fen:
        message, code = f"托管金额不得高于 {format_yuan(limits.max_fen)}", CUSTODY_LIMIT_CODES[1]
    else:
        return None
    return ValidationError(message, code=code, details={CUSTODY_FIELDS[base]: message})
