"""The product registry the runtime serves: every declaration published now (else its repository file), built
once per set of content hashes - a variant published while the app runs is known to the next deal, no restart.
A published declaration that no longer builds with the others (only a hand-edited row could) is logged and
left out alone: the other products, cities and running deals go on. A deal computes with the version it
pinned (`pinned_variant`)."""

from __future__ import annotations

import json
import logging

from app.db.models import Deal
from app.definitions.declarations import served_documents, template_exists
from app.definitions.pins import pin_key
from app.definitions.store import DefinitionStore
from app.domain.products import ProductRegistry, ProductsInvalid, ProductVariant, variant_of
from app.products.loader import products_from_documents, repository_products

log = logging.getLogger("cunguan.definitions")
KIND = "product"


class PublishedProducts(ProductRegistry):
    def __init__(self, store: DefinitionStore) -> None:  # no super().__init__: the variants are read at each use
        self.store = store
        self._built: dict[tuple[tuple[str, str], ...], dict[str, ProductVariant]] = {}

    def _build(self) -> dict[str, ProductVariant]:
        documents = {f"{code}.json": doc for code, doc in served_documents(self.store, KIND).items()}
        exists = template_exists(self.store)
        while True:
            try:
                registry = products_from_documents(documents, exists)
                return {code: registry.get(code) for code in registry.codes()}
            except ProductsInvalid as invalid:
                broken = {problem.file for problem in invalid.problems} & set(documents)
                if not broken or not set(documents) - broken:
                    log.error("product declarations cannot be loaded: %s; serving the repository's", invalid.details)
                    shipped = repository_products()
                    return {code: shipped.get(code) for code in shipped.codes()}
                log.error("product declarations %s cannot be loaded: left out", sorted(broken))
                documents = {source: doc for source, doc in documents.items() if source not in broken}

    @property  # type: ignore[override]
    def _variants(self) -> dict[str, ProductVariant]:
        key = tuple(sorted(self.store.published_hashes(KIND).items()))
        if key not in self._built:
            self._built[key] = self._build()
        return self._built[key]


def pinned_variant(store: DefinitionStore, products: ProductRegistry, deal: Deal) -> ProductVariant:
    """The declaration `deal` started with (its pin); a deal made before pins reads the one served now."""
    sha256 = (deal.definitions or {}).get(pin_key(KIND, deal.product))
    content = store.content(KIND, deal.product, sha256) if sha256 is not None else None
    return variant_of(json.loads(content)) if content is not None else products.get(deal.product)
