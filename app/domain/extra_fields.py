"""A city's extra form fields on a deal (the `form` fragment of its product config): the values kept, which of
them are a person's data, and how they read on screen and in the agreement. Pure.

Values are kept as JSON exactly as the form typed them: integers as integers, yuan fields in fen, `number`
fields as their decimal text ("89.37", never a float), dates as ISO text, booleans. The deal keeps them in one
encrypted column (`deals.extra_fields`); only those that are not a person's data are also case facts."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from app.domain.cities import FormField, FormSpec
from app.domain.forms.formats import WIDGET_FORMATS
from app.domain.money import format_yuan, to_chinese_upper
from app.domain.pii_mask import MASKS, PiiKind
from app.domain.timezone import chinese_day

# formats whose values are a person's data: kept only encrypted, masked where shown
PERSONAL_FORMATS: dict[str, PiiKind] = {
    "cn-resident-id": "id",
    "cn-mobile": "phone",
    "bank-card": "card",
    "bank-account": "card",
}
EVERY_KIND: frozenset[PiiKind] = frozenset(("id", "phone", "card"))
UNFILLED = "未填写"


def personal_kind(fmt: str | None) -> PiiKind | None:
    """The kind of personal data a value of this format is (None: not a person's data by its format)."""
    return PERSONAL_FORMATS.get(fmt or "")


def field_format(field: FormField) -> str | None:
    """The format that checks the field: its own, or the one its widget implies."""
    return field.schema.get("format") or WIDGET_FORMATS.get(field.widget or "")


def stored(value: Any) -> Any:
    """A typed form value as JSON keeps it exactly: decimals as text, dates as ISO text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def extras_json(form: FormSpec | None, clean: Mapping[str, Any]) -> str | None:
    """The city's extra fields of a cleaned form as one JSON text (None when the city adds none or none was
    filled)."""
    if form is None:
        return None
    values = {f.name: stored(clean[f.name]) for f in form.fields if clean.get(f.name) not in (None, "")}
    return json.dumps(values, ensure_ascii=False, sort_keys=True) if values else None


def read_extras(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


@dataclass(frozen=True)
class ExtraItem:
    name: str
    label: str
    text: str  # "" when the field was left empty


def _text(field: FormField, value: Any, masked: Collection[PiiKind]) -> str:
    if value is None or value == "":
        return ""
    kind = personal_kind(field_format(field))
    if kind is not None:
        return MASKS[kind](str(value)) if kind in masked else str(value)
    if field.widget == "yuan":
        return f"{format_yuan(int(value))}（大写：{to_chinese_upper(int(value))}）"
    if field.schema.get("type") == "boolean":
        return "是" if value else "否"
    if field_format(field) == "date":
        return chinese_day(date.fromisoformat(str(value)))
    return str(value)


def extra_items(
    form: FormSpec | None, values: Mapping[str, Any], masked: Collection[PiiKind] = EVERY_KIND
) -> tuple[ExtraItem, ...]:
    """Every extra field of the city's form, in the form's order (section, then x-order), with its label and
    its value as people read it: yuan in figures and 大写, dates in Chinese, booleans 是/否, decimals as typed;
    personal data of the kinds in `masked` masked."""
    if form is None:
        return ()
    return tuple(ExtraItem(f.name, f.label, _text(f, values.get(f.name), masked)) for f in form.fields)
