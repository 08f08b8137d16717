"""The city config's structured editor: schema + document → form model, typed input → document.

The form shows the *resolved* values (the document merged over its parent, `extends`), so an inherited value is
shown and edited like any other; the document written back is the merge patch over the same parent in the shape
of the document it replaces (`patch.patch_over`), so a config saved unchanged is the same document."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from app.domain.cities import merge_patch
from app.studio.catalog import Catalog
from app.studio.extra_fields import ExtraFieldsPart
from app.studio.filled import filled
from app.studio.model import Field, Option, RowGroup, Section, StudioForm
from app.studio.parts import (
    ChoicePart,
    Context,
    Errors,
    ParametersPart,
    Part,
    RowsPart,
    ScalarPart,
    event_options,
    row_specs,
)
from app.studio.patch import patch_over
from app.studio.specs import ABSENT, Inputs, Spec, resolve_ref, spec_for, text_of
from app.studio.units import UnitError

# the city's own editable keys; admin_code names the config, timezone is fixed, and whether agents see the city is
# the review flow's 上线 / 下线 step (app/cities/launches.py), not a field: a `status` already there is kept as is
CITY_FIELDS = ("name",)


def _workflow_options(ctx: Context, value: Any) -> list[Option]:
    return [Option(w.key, f"{w.name} 第 {w.version} 版") for w in ctx.catalog.workflows_for(ctx.product)]


def _bank_options(ctx: Context, value: Any) -> list[Option]:
    return [Option(code, name) for code, name in ctx.catalog.banks.items()]


def _template_options(ctx: Context, value: Any) -> list[Option]:
    return [Option(t, t) for t in ctx.catalog.templates_for(ctx.product)]


def _clause_options(ctx: Context, value: Any) -> list[Option]:
    return [Option(name, title) for name, title in ctx.catalog.clauses.items()]


def _workflow_key(value: Any) -> str:
    return f"{value.get('id')}@{value.get('version')}" if isinstance(value, dict) else str(value)


def _workflow_value(text: str) -> dict[str, Any]:
    workflow_id, _, version = text.partition("@")
    return {"id": workflow_id, "version": int(version)}


def product_parts(schema: Mapping[str, Any]) -> list[Part]:
    """The parts of a product section, in the schema's order of the product's properties."""
    parts: list[Part] = []
    product = schema["$defs"]["product"]
    for name, raw in product["properties"].items():
        node = resolve_ref(schema, raw)
        title, help_text, widget = str(node.get("title", name)), str(node.get("description", "")), node.get("x-widget")
        if widget == "workflow":
            parts.append(
                ChoicePart(
                    (name,),
                    title,
                    help_text,
                    _workflow_options,
                    what="工作流",
                    encode=_workflow_key,
                    decode=_workflow_value,
                )
            )
        elif widget == "banks":
            parts.append(ChoicePart((name,), title, help_text, _bank_options, many=True, what="银行"))
        elif widget in ("parameters", "deadlines"):
            parts.append(ParametersPart((name,), durations=widget == "deadlines"))
        elif widget == "extra_fields":
            parts.append(ExtraFieldsPart((name,), title, help_text, schema))
        elif node.get("type") == "array":
            parts.append(RowsPart((name,), title, help_text, row_specs(schema, node["items"])))
        elif node.get("type") == "object":
            parts += _object_parts(schema, name, node)
        else:
            parts.append(ScalarPart((name,), spec_for(schema, name, node)))
    return parts


def _object_parts(schema: Mapping[str, Any], name: str, node: Mapping[str, Any]) -> list[Part]:
    parts: list[Part] = []
    for child, raw in node.get("properties", {}).items():
        sub = resolve_ref(schema, raw)
        title, help_text, widget = str(sub.get("title", child)), str(sub.get("description", "")), sub.get("x-widget")
        if widget == "template":
            parts.append(ChoicePart((name, child), title, help_text, _template_options, what="协议模板"))
        elif widget == "clauses":
            parts.append(ChoicePart((name, child), title, help_text, _clause_options, many=True, what="条款"))
        elif widget == "events":
            parts.append(ChoicePart((name, child), title, help_text, event_options, many=True, what="事件"))
        elif sub.get("type") == "array":
            parts.append(RowsPart((name, child), title, help_text, row_specs(schema, sub["items"])))
        else:
            parts.append(ScalarPart((name, child), spec_for(schema, child, sub)))
    return parts


class CityStudio:
    """The editor of one schema with one catalog."""

    def __init__(self, schema: Mapping[str, Any], catalog: Catalog) -> None:
        self.schema, self.catalog = schema, catalog
        self.parts = product_parts(schema)

    # --- document → form ------------------------------------------------------------------------------------

    def _codes(self, resolved: Mapping[str, Any]) -> list[str]:
        known = [entry.code for entry in self.catalog.products]
        return known + [code for code in resolved.get("products", {}) if code not in known]

    def _base(self, code: str, resolved: Mapping[str, Any], parent: Mapping[str, Any] | None) -> dict[str, Any]:
        """What a product's section shows: its resolved values, else the parent's, else its declaration's."""
        for source in (resolved, parent or {}):
            value = source.get("products", {}).get(code)
            if isinstance(value, dict):
                return value
        entry = self.catalog.product(code)
        if entry is None:
            return {}
        workflow = {"id": entry.workflow_id, "version": entry.workflow_version}
        return {"workflow": workflow, "banks": [], "agreement": {"template": entry.template}}

    def _context(self, code: str, product: Mapping[str, Any], inputs: Inputs | None = None) -> Context:
        typed = text_of(inputs, f"products/{code}/workflow") if inputs is not None else ""
        workflow_id, _, version = typed.partition("@")
        if not version.isdigit():
            value = product.get("workflow")
            workflow_id, version = (
                (value.get("id", ""), str(value.get("version", ""))) if isinstance(value, dict) else ("", "")
            )
        workflow = (workflow_id, int(version)) if version.isdigit() else None
        return Context(code, f"products/{code}", self.catalog, workflow)

    def form(
        self,
        document: Mapping[str, Any],
        parent: Mapping[str, Any] | None,
        typed: Inputs | None = None,
        errors: Errors | None = None,
    ) -> StudioForm:
        """The form of `document` (over `parent`); with `typed`, the values as typed, and `errors` at their fields."""
        resolved = resolve(document, parent)
        city = Section("", "城市")
        for name in CITY_FIELDS:
            spec = spec_for(self.schema, name, self.schema["properties"][name], optional=False)
            city.fields.append(spec.field(name, resolved.get(name, ABSENT)))
        city.fields.append(Field("admin_code", "行政区划代码", "readonly", str(resolved.get("admin_code", ""))))
        if document.get("extends"):
            city.note = f"继承自 {document['extends']}：未改动的设置沿用上级配置"
        sections = [city]
        for code in self._codes(resolved):
            product = self._base(code, resolved, parent)
            entry = self.catalog.product(code)
            title = f"{entry.name}（{code}）" if entry else code
            section = Section(f"products/{code}", title, enabled=code in resolved.get("products", {}), switchable=True)
            if entry is None:
                section.error = f"未知业务：{code}"
            ctx = self._context(code, product, typed)
            for part in self.parts:
                for item in part.fields(ctx, product):
                    (section.groups if isinstance(item, RowGroup) else section.fields).append(item)
            sections.append(section)
        return filled(sections, typed, errors)

    # --- form → document ------------------------------------------------------------------------------------

    def read(
        self, inputs: Inputs, document: Mapping[str, Any], parent: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], Errors]:
        """The document the typed input makes (over the same parent) and the errors, Chinese, by input name."""
        resolved = resolve(document, parent)
        errors: Errors = {}
        target = copy.deepcopy(resolved)
        for name in CITY_FIELDS:
            spec = spec_for(self.schema, name, self.schema["properties"][name], optional=False)
            value = _parse(spec, inputs, name, resolved.get(name, ABSENT), errors)
            if value is ABSENT:
                errors.setdefault(name, f"请填写{spec.label}")
            else:
                target[name] = value
        products: dict[str, Any] = {}
        for code in self._codes(resolved):
            if f"products/{code}/_on" not in inputs:
                continue
            base = self._base(code, resolved, parent)
            ctx = self._context(code, base, inputs)
            product = copy.deepcopy(base)
            for part in self.parts:
                _set(product, part.path, part.parse(ctx, inputs, base, errors))
            products[code] = product
        if not products:
            errors["products"] = "至少开通一项业务"
        target["products"] = products
        if "extends" in document:
            target = {"extends": document["extends"], **target}
        return patch_over(parent, target, document), errors


def resolve(document: Mapping[str, Any], parent: Mapping[str, Any] | None) -> dict[str, Any]:
    own = {key: value for key, value in document.items() if key != "extends"}
    return merge_patch(copy.deepcopy(dict(parent or {})), own)


def _parse(spec: Spec, inputs: Inputs, key: str, before: Any, errors: Errors) -> Any:
    try:
        return spec.parse(inputs, key, before)
    except UnitError as error:
        errors[key] = str(error)
        return before


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set (or, ABSENT, remove) `path`; an object left with nothing but empty values is removed."""
    holder = data
    for part in path[:-1]:
        holder = holder.setdefault(part, {})
    if value is ABSENT:
        holder.pop(path[-1], None)
    else:
        holder[path[-1]] = value
    if len(path) > 1 and all(v in (ABSENT, False, None, "", []) for v in holder.values()):
        data.pop(path[0], None)
