"""The studio's catalog from the running platform: the configured banks, the registered products, the workflows
served (published versions, else the files), the agreement template folders and the clauses served (a clause
published through the clause editor is offered like a shipped one)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from app.domain.banks import KnownBank
from app.domain.city_checks import PLAN_ACTION
from app.domain.products import ProductRegistry
from app.state_machine.definition import WorkflowDefinition
from app.studio.catalog import Catalog, ProductEntry, WorkflowEntry, WorkflowParameter

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "agreement_templates"
_FOLDER = re.compile(r"^[^/]+/v\d+/agreement\.html\.j2$")
_HEADING = re.compile(r"<h\d[^>]*>(?:\{\{[^}]*\}\})?\s*(?P<title>[^<{]+)</h\d>")


def _clause_title(name: str, text: str) -> str:
    match = _HEADING.search(text)
    return f"{match.group('title').strip()}（{name}）" if match else name


def _file_clauses(templates: Path) -> dict[str, str]:
    return {
        path.name.removesuffix(".html.j2"): path.read_text(encoding="utf-8")
        for path in sorted((templates / "clauses").glob("*.html.j2"))
    }


def build_catalog(
    products_registry: ProductRegistry,
    served: Mapping[tuple[str, int], WorkflowDefinition],
    known_banks: Mapping[str, KnownBank],
    templates: Path = TEMPLATES_DIR,
    template_files: Iterable[str] | None = None,
    clause_texts: Mapping[str, str] | None = None,
) -> Catalog:
    """`served`: the runtime's workflows (`rt.workflows`), `products_registry` and `known_banks`: the runtime's
    products and banks as published (`rt.products`, `rt.known_banks`); `template_files` (`resale_escrow/v2/
    agreement.html.j2`, …) and `clause_texts` (name → source): what is served (`app.definitions.templates.
    served_sources`), else the files under `templates`."""
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
    if template_files is None:
        template_files = (path.relative_to(templates).as_posix() for path in templates.glob("*/v*/agreement.html.j2"))
    folders = sorted({name.removesuffix("/agreement.html.j2") for name in template_files if _FOLDER.match(name)})
    texts = _file_clauses(templates) if clause_texts is None else clause_texts
    clauses = {name: _clause_title(name, texts[name]) for name in sorted(texts)}
    return Catalog(banks, products, tuple(workflows), tuple(folders), clauses)
