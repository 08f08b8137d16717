"""The studio's catalog from the running platform: the configured banks, the registered products, the workflows
served (published versions, else the files), the agreement template folders and clause files."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from app.domain.banks import KnownBank
from app.domain.city_checks import PLAN_ACTION
from app.domain.products import ProductRegistry
from app.state_machine.definition import WorkflowDefinition
from app.studio.catalog import Catalog, ProductEntry, WorkflowEntry, WorkflowParameter

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "agreement_templates"
_HEADING = re.compile(r"<h\d[^>]*>(?:\{\{[^}]*\}\})?\s*(?P<title>[^<{]+)</h\d>")


def _clause_title(path: Path) -> str:
    match = _HEADING.search(path.read_text(encoding="utf-8"))
    return (
        f"{match.group('title').strip()}（{path.name.removesuffix('.html.j2')}）"
        if match
        else path.name.removesuffix(".html.j2")
    )


def build_catalog(
    products_registry: ProductRegistry,
    served: Mapping[tuple[str, int], WorkflowDefinition],
    known_banks: Mapping[str, KnownBank],
    templates: Path = TEMPLATES_DIR,
) -> Catalog:
    """`served`: the runtime's workflows (`rt.workflows`), `products_registry` and `known_banks`: the runtime's
    products and banks as published (`rt.products`, `rt.known_banks`)."""
    banks = {code: bank.short_name for code, bank in sorted(known_banks.items())}
    products_registry = products_registry.frozen()  # one read of the published declarations
    products = tuple(
        ProductEntry(code, v.name, v.workflow_id, v.workflow_version, v.agreement_template)
        for code in products_registry.codes()
        for v in [products_registry.get(code)]
    )
    workflows = []
    for workflow_id, version in sorted(served):
        definition = served[(workflow_id, version)]
        parameters = tuple(
            WorkflowParameter(p.name, p.type, p.label, p.default) for p in definition.parameters.values()
        )
        releases = sorted(
            {t.event for t in definition.transitions if PLAN_ACTION in t.actions and t.event != "retry_payout"}
        )
        events = dict(definition.events)
        workflows.append(WorkflowEntry(workflow_id, version, definition.name, events, parameters, tuple(releases)))
    folders = sorted(
        f"{path.parent.parent.name}/{path.parent.name}" for path in templates.glob("*/v*/agreement.html.j2")
    )
    clauses = {
        path.name.removesuffix(".html.j2"): _clause_title(path)
        for path in sorted((templates / "clauses").glob("*.html.j2"))
    }
    return Catalog(banks, products, tuple(workflows), tuple(folders), clauses)
