"""What the city checks check against, as served now: agreement templates and clauses (a repository file or a
published version, so a city may name a template or clause created in the publishing flow), bank codes and
products. `served_checker` reads them once per check (a handful of queries, not one per name)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.definitions.declarations import TEMPLATE_FILE
from app.definitions.store import DefinitionStore
from app.domain.banks import KnownBank
from app.domain.cities import CityConfig, ResolvedCity
from app.domain.city_checks import Workflows, city_problems
from app.domain.problems import Problem
from app.domain.products import ProductRegistry
from app.studio.catalog import Catalog
from app.studio.runtime_catalog import build_catalog

if TYPE_CHECKING:
    from app.platform.runtime import Runtime


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


def served_sources(store: DefinitionStore) -> tuple[list[str], dict[str, str]]:
    """What the studio offers: the template file names served and each served clause's source (a clause created
    in the publishing flow, e.g. with the clause editor, is offered once it is published)."""
    clauses: dict[str, str] = {}
    for name in store.published_hashes("clause"):
        entry = store.published("clause", name)
        if entry is not None:
            clauses[name] = entry.content
    return sorted(store.published_hashes("template")), clauses


def studio_catalog(rt: Runtime) -> Catalog:
    """The studio's dropdowns as served now: banks, products, workflows, templates and clauses."""
    template_files, clause_texts = served_sources(rt.definitions)
    return build_catalog(
        rt.products, rt.workflows, rt.known_banks, template_files=template_files, clause_texts=clause_texts
    )
