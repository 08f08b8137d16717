"""What the studio's dropdowns offer: banks, products, workflows (with their parameters and events), agreement
templates and clauses. Built by `app.studio.runtime_catalog` from the runtime; plain data here."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorkflowParameter:
    name: str
    type: str  # integer | fen | bps | boolean | string | duration
    label: str
    default: object


@dataclass(frozen=True)
class WorkflowEntry:
    id: str
    version: int
    name: str
    events: dict[str, str] = field(default_factory=dict)  # event -> Chinese label
    parameters: tuple[WorkflowParameter, ...] = ()
    release_events: tuple[str, ...] = ()  # the events a release plan's tranche may name (none: it releases at once)

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"


@dataclass(frozen=True)
class ProductEntry:
    code: str
    name: str
    workflow_id: str
    workflow_version: int  # the oldest version a city may run it on
    template: str  # the declared agreement template (folder/vN)


@dataclass(frozen=True)
class Catalog:
    banks: dict[str, str]  # code -> short Chinese name (光大)
    products: tuple[ProductEntry, ...]
    workflows: tuple[WorkflowEntry, ...]
    templates: tuple[str, ...]  # resale_escrow/v1, …
    clauses: dict[str, str]  # name -> Chinese title (its first heading), else the name

    def product(self, code: str) -> ProductEntry | None:
        return next((entry for entry in self.products if entry.code == code), None)

    def workflow(self, workflow_id: str, version: int) -> WorkflowEntry | None:
        return next((w for w in self.workflows if (w.id, w.version) == (workflow_id, version)), None)

    def workflows_for(self, product: str) -> list[WorkflowEntry]:
        """The workflow versions a city may run `product` on (its declared workflow, at its version or later)."""
        entry = self.product(product)
        if entry is None:
            return list(self.workflows)
        return [w for w in self.workflows if w.id == entry.workflow_id and w.version >= entry.workflow_version]

    def templates_for(self, product: str) -> list[str]:
        entry = self.product(product)
        folder = entry.template.split("/")[0] if entry is not None else ""
        return [t for t in self.templates if not folder or t.split("/")[0] == folder]

    def bank_choices_text(self) -> str:
        return "、".join(self.banks.values())
