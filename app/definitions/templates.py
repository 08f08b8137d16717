"""What the city checks check against, as served now: agreement templates and clauses (a repository file or a
published version, so a city may name a template or clause created in the publishing flow), bank codes and
products. `served_checker` reads them once per check (a handful of queries, not one per name)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.definitions.declarations import TEMPLATE_FILE
from app.definitions.store import DefinitionStore
from app.domain.banks import KnownBank
from app.domain.cities import CityConfig, ResolvedCity
from app.domain.city_checks import Workflows, city_problems
from app.domain.problems import Problem
from app.domain.products import ProductRegistry


@dataclass(frozen=True)
class AgreementNames:
    templates: frozenset[str]  # template file names ("resale_escrow/v1/agreement.html.j2")
    clauses: frozenset[str]

    def has_template(self, template: str) -> bool:
        return f"{template}/{TEMPLATE_FILE}" in self.templates

    def has_clause(self, clause: str) -> bool:
        return clause in self.clauses


def served_names(store: DefinitionStore) -> AgreementNames:
    return AgreementNames(frozenset(store.published_hashes("template")), frozenset(store.published_hashes("clause")))


def served_checker(
    workflows: Workflows, store: DefinitionStore, banks: Mapping[str, KnownBank], products: ProductRegistry
) -> Callable[[ResolvedCity, CityConfig], list[Problem]]:
    """The city checks against what is served when each check runs."""

    def check(resolved: ResolvedCity, city: CityConfig) -> list[Problem]:
        return city_problems(resolved, city, workflows, served_names(store), frozenset(banks), products.frozen())

    return check
