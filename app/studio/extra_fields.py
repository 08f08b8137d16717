"""A product's extra intake fields (`form`) as a table: one row per field, the row's name its key; what the table
does not show (enum, pattern, lengths) is kept from the field of the same name."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.studio.model import Field, RowGroup
from app.studio.parts import BLANK_ROWS, Context, Errors, Part, get_in, key_of
from app.studio.specs import ABSENT, Inputs, Spec, resolve_ref, spec_for
from app.studio.units import UnitError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
SHOWN = ("title", "x-section", "type", "x-widget", "x-order", "minimum", "maximum", "description")


@dataclass(frozen=True)
class ExtraFieldsPart(Part):
    path: tuple[str, ...]
    label: str
    help: str
    schema: Mapping[str, Any]

    def _columns(self) -> list[Spec]:
        node = resolve_ref(self.schema, {"$ref": "#/$defs/form_field"})["properties"]
        name = Spec("name", "字段代码", "text", "小写英文字母、数字和下划线，如 floor_area")
        required = Spec("required", "必填", "checkbox")
        return [
            name,
            *(spec_for(self.schema, key, node[key]) for key in SHOWN[:5]),
            required,
            *(spec_for(self.schema, key, node[key]) for key in SHOWN[5:]),
        ]

    def fields(self, ctx: Context, product: Mapping[str, Any]) -> list[Field | RowGroup]:
        key = key_of(ctx.prefix, self.path)
        schema = get_in(product, (*self.path, "schema"))
        properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
        required = schema.get("required", []) if isinstance(schema, dict) else []
        columns = self._columns()
        group = RowGroup(key, self.label, self.help, [c.field(f"{key}/-/{c.name}", ABSENT) for c in columns])
        names = list(properties)
        for index in range(len(names) + BLANK_ROWS):
            name = names[index] if index < len(names) else None
            item = {**properties[name], "name": name, "required": name in required} if name else {}
            row = [c.field(f"{key}/{index}/{c.name}", item.get(c.name, ABSENT)) for c in columns]
            row.append(Field(f"{key}/{index}/_delete", "删除", "checkbox", False))
            group.rows.append(row)
        return [group]

    def parse(self, ctx: Context, inputs: Inputs, product: Mapping[str, Any], errors: Errors) -> Any:
        key, before = key_of(ctx.prefix, self.path), get_in(product, self.path)
        form = before if isinstance(before, dict) else {}
        schema = form.get("schema", {}) if isinstance(form.get("schema"), dict) else {}
        properties, required = schema.get("properties", {}), list(schema.get("required", []))
        names = list(properties)
        out: dict[str, Any] = {}
        wanted: list[str] = []
        for index in range(len(names) + BLANK_ROWS):
            at = f"{key}/{index}"
            name = inputs.get(f"{at}/name", [""])[-1].strip()
            if f"{at}/_delete" in inputs or not name:
                continue
            if not NAME.match(name):
                errors[f"{at}/name"] = "字段代码须以小写英文字母开头，只含小写字母、数字和下划线（最多 64 个）"
                continue
            old = properties.get(names[index], {}) if index < len(names) else {}
            field = {k: v for k, v in old.items() if k not in SHOWN}
            for column in self._columns()[1:]:
                cell = f"{at}/{column.name}"
                try:
                    value = column.parse(inputs, cell, old.get(column.name, ABSENT))
                except UnitError as error:
                    errors[cell] = str(error)
                    value = old.get(column.name, ABSENT)
                if column.name == "required":
                    if value is True:
                        wanted.append(name)
                elif value is not ABSENT:
                    field[column.name] = value
            out[name] = {k: field[k] for k in [*old, *field] if k in field}
        if not out:
            return ABSENT
        sections = list(form.get("sections", []))
        sections += [s for s in dict.fromkeys(f.get("x-section") for f in out.values()) if s and s not in sections]
        kept_required = [n for n in required if n in wanted] + [n for n in wanted if n not in required]
        new_schema: dict[str, Any] = {}
        for k in [*schema, "required", "properties"]:
            if k == "required" and (kept_required or "required" in schema):
                new_schema["required"] = kept_required
            elif k == "properties":
                new_schema["properties"] = out
            elif k not in ("required", "properties"):
                new_schema[k] = schema[k]
        return {
            **{k: v for k, v in form.items() if k not in ("sections", "schema")},
            "sections": sections,
            "schema": new_schema,
        }
