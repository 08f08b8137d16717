"""存管银行 / 业务品种 / 工作日历 · 表单编辑: the structured editor of a definition (`app.studio.schema_form`), next
to the JSON editor of the definition page. GET shows the working content (the open version, else the published
text) as the form; POST reads it back, checks it against the kind's schema and saves it as the draft through
`publishing.save_draft` (then submit → simulate → approve → publish as ever) — or shows the page again with what
was typed and each error, in Chinese, at its field."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.db.definition_models import DefinitionVersion
from app.definitions import publishing
from app.definitions.templates import studio_catalog
from app.domain.config_versions import AUTHOR_ROLES, OPEN_STATUSES
from app.platform.errors import CunguanError
from app.studio.schema_form import SchemaStudio
from app.studio.specs import Inputs
from app.web.access import runtime

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
STUDIO_KINDS = {"bank": "bank.schema.json", "product": "product.schema.json", "calendar": "calendar.schema.json"}


Choices = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (pointer, ((value, label), …)), hashable


def catalog_choices(kind: str) -> Choices:
    """The dropdowns a kind's form takes from what is served now: a product variant's workflow, base product and
    agreement template are picked from the catalog, not typed (a name not in it is refused at its field)."""
    if kind != "product":
        return ()
    catalog = studio_catalog(runtime())
    workflows = {entry.id: entry.name for entry in catalog.workflows}
    return (
        ("workflow/id", tuple(sorted(workflows.items()))),
        ("base", tuple((entry.code, entry.name) for entry in catalog.products)),
        ("agreement/template", tuple((name, name) for name in catalog.templates)),
    )


@cache
def kind_studio(kind: str, label: str, choices: Choices = ()) -> SchemaStudio:
    schema = json.loads((SCHEMAS / STUDIO_KINDS[kind]).read_text(encoding="utf-8"))
    for pointer, options in choices:
        node = schema
        for step in pointer.split("/"):
            node = node["properties"][step]
        node["enum"] = [value for value, _ in options]
        node["x-enum-labels"] = {value: f"{name}（{value}）" if name != value else value for value, name in options}
    return SchemaStudio(schema, label)


def _working(kind: str, name: str) -> tuple[DefinitionVersion | None, dict[str, Any]] | None:
    rt = runtime()
    with rt.db.uow() as uow:
        query = select(DefinitionVersion).where(DefinitionVersion.kind == kind, DefinitionVersion.name == name)
        versions = list(uow.session.scalars(query.order_by(DefinitionVersion.version.desc())))
        current = next((v for v in versions if v.status in OPEN_STATUSES), None)
    published = rt.definitions.published(kind, name)
    text = current.content if current is not None else published.content if published is not None else ""
    if not text:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        return current, {}
    return current, document


class DefinitionStudioRoutes:
    """Mixed into `DefinitionsView` (its roles, `_checked`, `_require`, `render`)."""

    def _kind_studio_page(
        self, kind: str, name: str, typed: Inputs | None = None, errors: dict[str, str] | None = None
    ) -> tuple[str, int] | str:
        working = _working(kind, name)
        if working is None:
            abort(404)
        current, document = working
        label = runtime().definitions.kinds[kind].label
        form = kind_studio(kind, label, catalog_choices(kind)).form(document, typed, errors)
        if not document:
            form.errors.append("当前内容不是合法的 JSON 对象，请在 JSON 编辑中修正")
        draft = current is None or current.status == "draft"
        can_author = self.can_write and self.actor.role in AUTHOR_ROLES  # type: ignore[attr-defined]
        page = self.render(  # type: ignore[attr-defined]
            "admin/cunguan/definition_studio.html",
            kind=kind,
            name=name,
            label=label,
            form=form,
            current=current,
            editable=draft and can_author and bool(document),
        )
        return (page, 422) if form.error_count else page

    def _studio_kind(self, kind: str, ref: str) -> tuple[str, str]:
        kind, name = self._checked(kind, ref)  # type: ignore[attr-defined]
        if kind not in STUDIO_KINDS:
            abort(404)
        return kind, name

    @expose("/<kind>/<path:ref>/studio")
    def definition_studio(self, kind: str, ref: str) -> tuple[str, int] | str:
        return self._kind_studio_page(*self._studio_kind(kind, ref))

    @expose("/<kind>/<path:ref>/studio", methods=("POST",))
    def definition_studio_save(self, kind: str, ref: str) -> Response | tuple[str, int] | str:
        self._require(AUTHOR_ROLES)  # type: ignore[attr-defined]
        kind, name = self._studio_kind(kind, ref)
        typed = {key: values for key, values in request.form.to_dict(flat=False).items() if key != "csrf_token"}
        working = _working(kind, name)
        if working is None or not working[1]:
            abort(404)
        rt = runtime()
        new, errors = kind_studio(kind, rt.definitions.kinds[kind].label, catalog_choices(kind)).read(typed, working[1])
        if errors:
            return self._kind_studio_page(kind, name, typed, errors)
        content = json.dumps(new, ensure_ascii=False, indent=2) + "\n"
        try:
            version = publishing.save_draft(rt, kind, name, content, self.actor.username)  # type: ignore[attr-defined]
        except CunguanError as error:
            flash(error.message, "error")
            return redirect(url_for(".definition_studio", kind=kind, ref=name))
        flash(f"已保存为第 {version.version} 版草稿", "success")
        return redirect(url_for(".definition_studio", kind=kind, ref=name))
