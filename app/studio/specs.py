"""One editable value: how the schema node shows it (display text) and how typed input becomes it again.

`spec_for` reads the city schema's annotations — `$ref` fen/bps (`x-unit`), `enum` with `x-enum-labels`,
booleans, integers, text — so a key added to the schema gets its field without code here."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.studio.model import Field, Option
from app.studio.units import (
    UnitError,
    format_bps,
    format_duration_input,
    format_fen,
    parse_bps,
    parse_duration_input,
    parse_fen,
    parse_int,
)

Inputs = Mapping[str, Sequence[str]]  # input name -> the values posted (a form's MultiDict, as lists)
ABSENT = object()  # the key is left out (blank input)


def text_of(inputs: Inputs, name: str) -> str:
    values = inputs.get(name) or [""]
    return values[-1] if values else ""


def resolve_ref(schema: Mapping[str, Any], node: Mapping[str, Any]) -> dict[str, Any]:
    """`node` with its local `$ref` followed; the node's own title and description win."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return dict(node)
    target = dict(schema["$defs"][ref.removeprefix("#/$defs/")])
    target.update({key: value for key, value in node.items() if key != "$ref"})
    return target


@dataclass(frozen=True)
class Spec:
    """A scalar field: widget (text, number, decimal, yuan, rate, select, checkbox, flag, duration, readonly)."""

    name: str  # the key in its object
    label: str
    widget: str
    help: str = ""
    options: tuple[Option, ...] = ()
    placeholder: str = ""

    def field(self, key: str, value: Any) -> Field:
        """The field showing `value` (ABSENT: empty)."""
        made = Field(key, self.label, self.widget, help=self.help, options=self.options, placeholder=self.placeholder)
        if value is ABSENT or value is None:
            made.value = False if self.widget in ("checkbox", "flag") else ""
            made.unit = "%" if self.widget == "rate" else "days" if self.widget == "duration" else ""
        elif self.widget == "yuan":
            made.value = format_fen(value)
        elif self.widget == "rate":
            made.value, made.unit = format_bps(value)
        elif self.widget == "duration":
            made.value, made.unit, made.cut_off = format_duration_input(value)
        elif self.widget in ("checkbox", "flag"):
            made.value = value is True
        elif self.widget == "select" and isinstance(value, bool):
            made.value = "true" if value else "false"
        elif self.widget == "decimal":
            made.value = json.dumps(value)
        else:
            made.value = str(value)
        return made

    def parse(self, inputs: Inputs, key: str, before: Any) -> Any:
        """The value typed at `key` (ABSENT when blank); UnitError in Chinese. `before`, the value shown, is kept
        when the input means the same (a deadline typed as it was shown)."""
        if self.widget == "checkbox":
            return key in inputs
        if self.widget == "flag":  # a key that is there only when true (a tranche's remainder)
            return True if key in inputs else ABSENT
        typed = text_of(inputs, key).strip()
        if self.widget == "duration":
            if not typed:
                return ABSENT
            value = parse_duration_input(typed, text_of(inputs, key + ":unit"), key + ":cut_off" in inputs)
            return before if before is not ABSENT and _same(before) == value else value
        if not typed:
            return ABSENT
        if self.widget == "yuan":
            return parse_fen(typed)
        if self.widget == "rate":
            return parse_bps(typed, text_of(inputs, key + ":unit") or "%")
        if self.widget == "number":
            return parse_int(typed, self.label)
        if self.widget == "decimal":
            return _decimal_number(typed, self.label)
        if self.widget == "select":
            allowed = {option.value: option.label for option in self.options}
            if typed not in allowed:
                shown = "、".join(label for label in allowed.values() if label)
                raise UnitError(f"{self.label}只能选：{shown}")
            return (
                {"true": True, "false": False}.get(typed, typed) if self.options and _is_yes_no(self.options) else typed
            )
        return typed


def _same(value: Any) -> Any:
    """A stored deadline as the studio would write it again (a `"bank_cut_off": false` is not written)."""
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if item is not False}
    return value


def _is_yes_no(options: tuple[Option, ...]) -> bool:
    return {option.value for option in options} <= {"", "true", "false"}


def _decimal_number(text: str, label: str) -> int | float:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnitError(f"{label}请填写数字（“{text}”无法识别）")
    return value


YES_NO = (Option("", "（沿用默认）"), Option("true", "是"), Option("false", "否"))


def spec_for(schema: Mapping[str, Any], name: str, node: Mapping[str, Any], *, optional: bool = True) -> Spec:
    """The field of one schema property: its Chinese title and description, its widget from its type."""
    node = resolve_ref(schema, node)
    label, help_text = str(node.get("title", name)), str(node.get("description", ""))
    if node.get("x-unit") == "yuan":
        return Spec(name, label, "yuan", help_text, placeholder="不限" if "留空不限" in help_text else "")
    if node.get("x-unit") == "rate":
        return Spec(name, label, "rate", help_text)
    if "enum" in node:
        labels = node.get("x-enum-labels", {})
        options = tuple(Option(str(value), str(labels.get(value, value))) for value in node["enum"])
        blank = (Option("", "（请选择）"),) if optional else ()
        return Spec(name, label, "select", help_text, blank + options)
    if node.get("const") is True:
        return Spec(name, label, "flag", help_text)
    if node.get("type") == "boolean":
        return Spec(name, label, "checkbox", help_text)
    if node.get("type") == "integer":
        return Spec(name, label, "number", help_text)
    if node.get("type") == "number":
        return Spec(name, label, "decimal", help_text)
    return Spec(name, label, "text", help_text)
