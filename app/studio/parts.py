"""The parts of one product's section: each shows its value(s) of the product as fields or rows and reads them
back from the typed input. Which part a schema property gets is decided by its `x-widget` (catalog-backed
dropdowns and checklists, workflow parameters, extra fields) or else by its type (`specs.spec_for`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.studio.catalog import Catalog
from app.studio.model import Field, Option, RowGroup
from app.studio.specs import ABSENT, YES_NO, Inputs, Spec, resolve_ref, spec_for, text_of
from app.studio.units import UnitError, format_duration_input, format_fen

BLANK_ROWS = 2  # empty rows under a table, to add rows without JavaScript
Errors = dict[str, str]  # input name -> Chinese message


def get_in(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return ABSENT
        data = data[part]
    return data


def key_of(prefix: str, path: tuple[str | int, ...]) -> str:
    return "/".join([prefix, *map(str, path)])


@dataclass(frozen=True)
class Context:
    product: str  # the product's code
    prefix: str  # products/<code>
    catalog: Catalog
    workflow: tuple[str, int] | None  # the workflow the section runs (for its parameters and events)


class Part:
    path: tuple[str, ...]

    def fields(self, ctx: Context, product: Mapping[str, Any]) -> list[Field | RowGroup]:
        raise NotImplementedError

    def parse(self, ctx: Context, inputs: Inputs, product: Mapping[str, Any], errors: Errors) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class ScalarPart(Part):
    path: tuple[str, ...]
    spec: Spec

    def fields(self, ctx: Context, product: Mapping[str, Any]) -> list[Field | RowGroup]:
        return [self.spec.field(key_of(ctx.prefix, self.path), get_in(product, self.path))]

    def parse(self, ctx: Context, inputs: Inputs, product: Mapping[str, Any], errors: Errors) -> Any:
        key = key_of(ctx.prefix, self.path)
        try:
            return self.spec.parse(inputs, key, get_in(product, self.path))
        except UnitError as error:
            errors[key] = str(error)
            return get_in(product, self.path)


@dataclass(frozen=True)
class ChoicePart(Part):
    """A dropdown (one value) or a checklist (several, kept in the order they had) from the catalog."""

    path: tuple[str, ...]
    label: str
    help: str
    options: Callable[[Context, Any], list[Option]]
    many: bool = False
    what: str = ""  # 银行, 条款…: named in the error
    encode: Callable[[Any], str] = str
    decode: Callable[[str], Any] = str

    def fields(self, ctx: Context, product: Mapping[str, Any]) -> list[Field | RowGroup]:
        value = get_in(product, self.path)
        options = tuple(self.options(ctx, value))
        shown: str | list[str]
        if self.many:
            shown = [self.encode(item) for item in value] if isinstance(value, list) else []
        else:
            shown = self.encode(value) if value is not ABSENT else ""
        widget = "checks" if self.many else "select"
        return [Field(key_of(ctx.prefix, self.path), self.label, widget, shown, self.help, options)]

    def parse(self, ctx: Context, inputs: Inputs, product: Mapping[str, Any], errors: Errors) -> Any:
        key, before = key_of(ctx.prefix, self.path), get_in(product, self.path)
        allowed = {option.value: option.label for option in self.options(ctx, before)}
        typed = [v for v in inputs.get(key, []) if v] if self.many else [text_of(inputs, key).strip()]
        unknown = [v for v in typed if v and v not in allowed]
        if unknown:
            errors[key] = f"未知{self.what}：{'、'.join(unknown)}（可选：{'、'.join(allowed.values())}）"
            return before
        if not self.many:
            return self.decode(typed[0]) if typed[0] else ABSENT
        earlier = [self.encode(item) for item in before] if isinstance(before, list) else []
        ordered = [v for v in earlier if v in typed] + [v for v in typed if v not in earlier]
        return [self.decode(v) for v in dict.fromkeys(ordered)] if ordered else ABSENT


@dataclass(frozen=True)
class ParametersPart(Part):
    """The workflow's declared parameters (`deadlines`: its durations; `parameters`: the rest); empty = default."""

    path: tuple[str, ...]
    durations: bool

    def _specs(self, ctx: Context) -> list[Spec]:
        entry = ctx.catalog.workflow(*ctx.workflow) if ctx.workflow else None
        specs = []
        for p in entry.parameters if entry else ():
            if (p.type == "duration") != self.durations:
                continue
            if p.type == "duration":
                number, unit, _ = format_duration_input(p.default)
                shown = number if unit == "iso" else f"{number} {UNIT_WORDS.get(unit, unit)}"
                specs.append(Spec(p.name, p.label, "duration", placeholder=f"默认 {shown}"))
            elif p.type == "fen":
                default = format_fen(p.default) if isinstance(p.default, int) else ""
                specs.append(Spec(p.name, p.label.replace("（分）", ""), "yuan", placeholder=f"默认 {default}"))
            elif p.type == "bps":
                specs.append(Spec(p.name, p.label, "rate", placeholder=f"默认 {p.default} 基点"))
            elif p.type == "boolean":
                specs.append(Spec(p.name, p.label, "select", options=YES_NO))
            else:
                widget = "number" if p.type == "integer" else "text"
                specs.append(Spec(p.name, p.label, widget, placeholder=f"默认 {p.default}"))
        return specs

    def fields(self, ctx: Context, product: Mapping[str, Any]) -> list[Field | RowGroup]:
        return [
            s.field(key_of(ctx.prefix, (*self.path, s.name)), get_in(product, (*self.path, s.name)))
            for s in self._specs(ctx)
        ]

    def parse(self, ctx: Context, inputs: Inputs, product: Mapping[str, Any], errors: Errors) -> Any:
        before = get_in(product, self.path)
        out = dict(before) if isinstance(before, dict) else {}
        for spec in self._specs(ctx):
            key = key_of(ctx.prefix, (*self.path, spec.name))
            try:
                value = spec.parse(inputs, key, out.get(spec.name, ABSENT))
            except UnitError as error:
                errors[key] = str(error)
                continue
            if value is ABSENT:
                out.pop(spec.name, None)
            else:
                out[spec.name] = value
        return out if out else ABSENT


UNIT_WORDS = {"days": "天", "working_days": "个工作日", "months": "个月", "weeks": "周", "hours": "小时"}


@dataclass(frozen=True)
class RowsPart(Part):
    """An array of objects (fees, tranches, approvals) as a table: a column per property of the item schema,
    a 删除 box per row, blank rows to add one; a row left blank is no row."""

    path: tuple[str, ...]
    label: str
    help: str
    columns: tuple[Spec, ...]

    def _columns(self, ctx: Context) -> list[Spec]:
        return [_with_events(spec, ctx) for spec in self.columns]

    def fields(self, ctx: Context, product: Mapping[str, Any]) -> list[Field | RowGroup]:
        key, value = key_of(ctx.prefix, self.path), get_in(product, self.path)
        items = value if isinstance(value, list) else []
        columns = self._columns(ctx)
        group = RowGroup(key, self.label, self.help, [c.field(f"{key}/-/{c.name}", ABSENT) for c in columns])
        for index in range(len(items) + BLANK_ROWS):
            item = items[index] if index < len(items) else {}
            row = [c.field(f"{key}/{index}/{c.name}", item.get(c.name, ABSENT)) for c in columns]
            row.append(Field(f"{key}/{index}/_delete", "删除", "checkbox", False))
            group.rows.append(row)
        return [group]

    def parse(self, ctx: Context, inputs: Inputs, product: Mapping[str, Any], errors: Errors) -> Any:
        key, value = key_of(ctx.prefix, self.path), get_in(product, self.path)
        items = value if isinstance(value, list) else []
        rows = []
        for index in range(len(items) + BLANK_ROWS):
            at = f"{key}/{index}"
            if f"{at}/_delete" in inputs or _blank(inputs, at):
                continue
            before = items[index] if index < len(items) else {}
            row: dict[str, Any] = {}
            for column in self._columns(ctx):
                cell = f"{at}/{column.name}"
                try:
                    parsed = column.parse(inputs, cell, before.get(column.name, ABSENT))
                except UnitError as error:
                    errors[cell] = str(error)
                    parsed = before.get(column.name, ABSENT)
                if parsed is not ABSENT:
                    row[column.name] = parsed
            rows.append(row)
        return rows if rows or isinstance(value, list) else ABSENT


def _blank(inputs: Inputs, at: str) -> bool:
    own = {name: values for name, values in inputs.items() if name.startswith(at + "/")}
    return not any(value.strip() for name, values in own.items() if not name.endswith(":unit") for value in values)


def _with_events(spec: Spec, ctx: Context) -> Spec:
    if spec.widget != "event":
        return spec
    entry = ctx.catalog.workflow(*ctx.workflow) if ctx.workflow else None
    events = [Option(e, f"{entry.events.get(e, e)}（{e}）") for e in entry.release_events] if entry else []
    return Spec(spec.name, spec.label, "select", spec.help, (Option("", "（最后一个放款条件）"), *events))


def event_options(ctx: Context, _value: Any) -> list[Option]:
    entry = ctx.catalog.workflow(*ctx.workflow) if ctx.workflow else None
    return [Option(event, f"{label}（{event}）") for event, label in (entry.events.items() if entry else ())]


def row_specs(schema: Mapping[str, Any], item: Mapping[str, Any]) -> tuple[Spec, ...]:
    node = resolve_ref(schema, item)
    specs = []
    for name, child in node.get("properties", {}).items():
        spec = spec_for(schema, name, child)
        if child.get("x-widget") == "event":
            spec = Spec(name, spec.label, "event", spec.help)
        specs.append(spec)
    return tuple(specs)
