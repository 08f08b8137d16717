"""The clause editor's work, Flask-free: what a clause may print (the deal's data and the live cities' extra
fields), a clause's markup as it stands (the version under work, else what serves), the preview rendered in the
agreement sandbox with sample data, and saving as a draft through the one publishing flow (`publishing.save_draft`:
roles, audit, review like every definition). Markup ↔ clause: `app.domain.clause_markup`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from jinja2 import DictLoader

from app.db.definition_models import DefinitionVersion
from app.definitions import publishing
from app.domain.clause_markup import ClauseText, from_clause, to_clause
from app.domain.clause_variables import EXTRA_PREFIX, Variable, offered, sample_context
from app.pdf.render import agreement_environment, render_sandboxed
from app.platform.runtime import Runtime

KIND = "clause"
CLAUSE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")  # included as clauses/<name>.html.j2
_PREVIEW = "clause.html.j2"


@dataclass(frozen=True)
class Standing:
    """A clause as the editor opens it."""

    name: str
    source: str | None  # None: a new clause
    version: DefinitionVersion | None  # the version under work, if any
    markup: ClauseText | None  # None for a clause written in a form the markup cannot say

    @property
    def editable(self) -> bool:
        return self.markup is not None and (self.version is None or self.version.status == "draft")


def extra_fields(rt: Runtime) -> dict[str, str]:
    """The extra intake fields of the live cities' products, name → label (the first label seen)."""
    found: dict[str, str] = {}
    for city in rt.cities.live_cities():
        for product in city.products.values():
            for field in product.form.fields if product.form is not None else ():
                found.setdefault(field.name, field.label)
    return found


def variables(rt: Runtime) -> tuple[Variable, ...]:
    return offered(extra_fields(rt))


def paths(offer: tuple[Variable, ...]) -> frozenset[str]:
    return frozenset(variable.path for variable in offer)


def standing(rt: Runtime, name: str, offer: tuple[Variable, ...]) -> Standing:
    with rt.db.uow() as uow:
        version = publishing.open_version(uow.session, KIND, name)
        if version is not None:
            uow.session.expunge(version)
    served = rt.definitions.published(KIND, name)
    source = version.content if version is not None else served.content if served is not None else None
    if source is None:
        return Standing(name, None, None, ClauseText("", ""))
    return Standing(name, source, version, from_clause(source, paths(offer)))


def preview(source: str, offer: tuple[Variable, ...]) -> str:
    """The clause rendered as an agreement prints it, for the sample deal (AgreementTemplateError, in Chinese,
    when the sandbox refuses it)."""
    extras = [v.path.removeprefix(EXTRA_PREFIX) for v in offer if v.path.startswith(EXTRA_PREFIX)]
    environment = agreement_environment(DictLoader({_PREVIEW: source}))
    return render_sandboxed(environment, _PREVIEW, sample_context(extras))


def save(rt: Runtime, name: str, clause: ClauseText, offer: tuple[Variable, ...], author: str) -> DefinitionVersion:
    """The clause's source from `clause` as the draft of `name` (ClauseMarkupError for bad markup)."""
    return publishing.save_draft(rt, KIND, name, to_clause(clause, paths(offer)), author)
