"""The structured editor of any definition schema (bank, product variant, calendar): one section for the top-level
scalars, one per nested object (its own nested objects flattened into it), arrays of objects as row tables, arrays
of strings as one-per-line text. Reuses the city studio's specs, rows and form model; no Flask, no database.

Typed input → document: the document edited in place (keys the form does not show are kept), then checked against
the schema; each problem lands, in Chinese, on the field its JSON pointer names."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator

from app.studio.catalog import Catalog
from app.studio.filled import filled
from app.studio.messages import schema_message
from app.studio.model import Field, RowGroup, Section, StudioForm
from app.studio.parts import ABSENT, Context, Errors, Part, RowsPart, ScalarPart, get_in, row_specs
from app.studio.specs import Inputs, resolve_ref, spec_for, text_of
from app.studio.units import UnitError

_CONTEXT = Context(
    "", "", Catalog({}, (), (), (), {}), None
)  # generic parts need no catalog: keys are the plain JSON pointers


class LinesPart(Part):
    """An array of strings as a textarea, one item a line; blank lines dropped."""

    def __init__(self, path: tuple[str, ...], label: str, help_text: str) -> None:
        self.path, self.label, self.help = path, label, help_text

    def _key(self) -> str:
        return "/" + "/".join(self.path)  # like key_of with the empty prefix; the form drops the leading slash

    def fields(self, ctx: Context, product: Mapping[str, Any]) -> list[Field | RowGroup]:
        value = get_in(product, self.path)
        shown = "\n".join(map(str, value)) if isinstance(value, list) else ""
        return [Field(self._key(), self.label, "textarea", shown, self.help)]

    def parse(self, ctx: Context, inputs: Inputs, product: Mapping[str, Any], errors: Errors) -> Any:
        lines = [line.strip() for line in text_of(inputs, self._key()).splitlines() if line.strip()]
        return lines if lines or isinstance(get_in(product, self.path), list) else ABSENT


class SchemaStudio:
    """The editor of one definition schema."""

    def __init__(self, schema: Mapping[str, Any], title: str) -> None:
        self.schema, self.title = schema, title
        self.validator = Draft202012Validator(schema)
        self.sections: list[tuple[str, str, str, list[Part]]] = []  # key, title, help, parts
        top: list[Part] = []
        self.sections.append(("", title, "", top))
        for name, raw in schema.get("properties", {}).items():
            node = resolve_ref(schema, raw)
            if node.get("type") == "object" and "properties" in node:
                parts: list[Part] = []
                self._collect(parts, (name,), node)
                self.sections.append((name, str(node.get("title", name)), str(node.get("description", "")), parts))
            else:
                self._collect(top, (name,), node)

    def _collect(self, parts: list[Part], path: tuple[str, ...], node: Mapping[str, Any]) -> None:
        if node.get("type") == "object" and "properties" in node:
            for child, raw in node["properties"].items():
                sub = resolve_ref(self.schema, raw)
                if "title" in node and "title" in sub and len(path) > 1:
                    sub = {**sub, "title": f"{node['title']} · {sub['title']}"}
                self._collect(parts, (*path, child), sub)
            return
        name = path[-1]
        title, help_text = str(node.get("title", name)), str(node.get("description", ""))
        if node.get("type") == "array":
            items = resolve_ref(self.schema, node.get("items", {}))
            if items.get("type") == "object":
                parts.append(RowsPart(path, title, help_text, row_specs(self.schema, items)))
            else:
                parts.append(LinesPart(path, title, help_text))
            return
        parts.append(ScalarPart(path, spec_for(self.schema, name, node)))

    # --- document → form ------------------------------------------------------------------------------------

    def form(
        self, document: Mapping[str, Any], typed: Inputs | None = None, errors: Errors | None = None
    ) -> StudioForm:
        sections = []
        for key, title, help_text, parts in self.sections:
            section = Section(key, title, note=help_text)
            for part in parts:
                for item in part.fields(_CONTEXT, document):
                    _unprefix(item)
                    if isinstance(item, Field) and item.widget == "text" and "\n" in str(item.value):
                        item.widget = "textarea"  # a PEM certificate: an <input> would drop its line breaks
                    (section.groups if isinstance(item, RowGroup) else section.fields).append(item)
            sections.append(section)
        return filled(sections, typed, errors)

    # --- form → document ------------------------------------------------------------------------------------

    def read(self, inputs: Inputs, document: Mapping[str, Any]) -> tuple[dict[str, Any], Errors]:
        """The document the typed input makes and the errors, Chinese, by input name (JSON pointer, no slash)."""
        target = copy.deepcopy(dict(document))
        inputs = {key: [v.replace("\r\n", "\n") for v in values] for key, values in inputs.items()}
        errors: Errors = {}
        for _key, _title, _help, parts in self.sections:
            for part in parts:
                value = _parse(part, inputs, document, errors)
                _put(target, part.path, value)
        if not errors:
            for problem in self.validator.iter_errors(target):
                pointer = "/".join(map(str, problem.absolute_path))
                if problem.validator == "required":
                    missing = problem.message.split("'")[1] if "'" in problem.message else ""
                    pointer = "/".join(p for p in (pointer, missing) if p)
                errors.setdefault(pointer, schema_message(problem.message))
        return target, errors


def _parse(part: Part, inputs: Inputs, document: Mapping[str, Any], errors: Errors) -> Any:
    shifted: Errors = {}
    try:
        value = part.parse(_CONTEXT, _prefixed(inputs), document, shifted)
    except UnitError as error:
        errors["/".join(part.path)] = str(error)
        return get_in(document, part.path)
    errors.update({key.lstrip("/"): message for key, message in shifted.items()})
    before = get_in(document, part.path)
    if isinstance(value, str) and isinstance(before, str) and value == before.strip():
        return before  # only the surrounding blanks the input trims (a PEM's last line break): unchanged
    return value


def _prefixed(inputs: Inputs) -> Inputs:
    """Generic parts build keys as "<prefix>/<path>" with an empty prefix: "/name"; the form's names have no slash."""
    return {"/" + key: values for key, values in inputs.items()}


def _unprefix(item: Field | RowGroup) -> None:
    item.key = item.key.lstrip("/")
    if isinstance(item, RowGroup):
        for cell in [*item.columns, *(cell for row in item.rows for cell in row)]:
            cell.key = cell.key.lstrip("/")


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    holder = data
    for part in path[:-1]:
        nxt = holder.get(part)
        if not isinstance(nxt, dict):
            if value is ABSENT:
                return
            nxt = holder[part] = {}
        holder = nxt
    if value is ABSENT:
        holder.pop(path[-1], None)
    else:
        holder[path[-1]] = value
