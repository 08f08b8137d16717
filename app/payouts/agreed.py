"""What a deal's agreement releases in all: the payee rules' limit (`payees`) and the base of its fees (`app.fees`)."""

from __future__ import annotations

from app.db.models import Deal

# products whose agreement covers a whole lease (every month's rent and the deposit): releases may reach
# the contract's value; every other product releases at most the custody amount its agreement names
WHOLE_CONTRACT_PRODUCTS = frozenset({"rent_custody", "provident_fund_rent"})


def agreed_release_fen(deal: Deal) -> int:
    """The most the deal's agreement allows to be released to the receiving party, in all."""
    return deal.price_fen if deal.product in WHOLE_CONTRACT_PRODUCTS else deal.custody_amount_fen
