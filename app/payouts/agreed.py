"""What a deal's agreement releases in all: the payee rules' limit (`payees`) and the base of its fees (`app.fees`)."""

from __future__ import annotations

from app.db.models import Deal
from app.domain.products import ProductRegistry


def agreed_release_fen(deal: Deal, products: ProductRegistry) -> int:
    """The most the deal's agreement allows to be released to the receiving party, in all: a whole lease's value
    for products whose base covers a lease (every month's rent and the deposit), else the custody amount."""
    return deal.price_fen if products.get(deal.product).releases_whole_contract else deal.custody_amount_fen
