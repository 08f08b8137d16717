"""Where a deal's agreement reads its template, partials and clauses: the versions the deal pinned
(`app.definitions.pins`), never a later edit, reviewed or not. Deals made before pins existed (no
`Deal.definitions`) read what is published now."""

from __future__ import annotations

from app.db.models import Deal
from app.definitions.kinds import CLAUSES
from app.definitions.pins import pin_key
from app.definitions.store import DefinitionStore
from app.pdf.render import Sources

CLAUSE_SUFFIX = ".html.j2"


def definition_of(template_name: str) -> tuple[str, str]:
    """(kind, name) of a template name as templates include it: "clauses/dispute.html.j2" is clause "dispute"."""
    folder, _, file = template_name.partition("/")
    if folder == CLAUSES and file.endswith(CLAUSE_SUFFIX) and "/" not in file:
        return "clause", file.removesuffix(CLAUSE_SUFFIX)
    return "template", template_name


def deal_source(store: DefinitionStore, deal: Deal) -> Sources:
    pins = dict(deal.definitions or {})

    def source(template_name: str) -> str | None:
        kind, name = definition_of(template_name)
        if pins:
            sha256 = pins.get(pin_key(kind, name))
            return store.content(kind, name, sha256) if sha256 is not None else None
        entry = store.published(kind, name)
        return entry.content if entry is not None else None

    return source
