"""Forms generated from JSON Schema: a product's base schema plus a city's extra fields and UI hints.

Pure (no Flask). `build_form` gives ordered sections of fields (label, help, widget, required,
conditional visibility); `SchemaForm.validate` turns what was typed into typed values (yuan → fen,
dates) or raises ValidationError with one Chinese message per field.

UI hints live next to the JSON Schema keywords: `title` (label), `description` (help), `examples`
(placeholder), `x-section`, `x-order`, `x-widget`; the root has `x-sections` and `x-checks`
(cross-section consistency rules). Conditional fields are `allOf` items of the form
`{"if": {"properties": {F: {"const": V}}, "required": [F]}, "then": {"required": [...]}}`."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError

from app.domain.cities import FormSpec
from app.domain.forms.formats import FORMATS, WIDGET_FORMATS, format_checker, parse_date
from app.domain.forms.patterns import linear_pattern
from app.domain.money import format_yuan, parse_yuan
from app.platform.errors import ConfigError, ValidationError

BASE_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "forms"
CHECK_RULES = ("same", "differ", "at_most", "less_than", "greater_than")
_TRUE = ("on", "true", "1", "yes")
# a `"type": "number"` field: a plain decimal as people type it (no exponent), kept exact as a Decimal
_DECIMAL = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,6})?")


@dataclass(frozen=True)
class Condition:
    """The field is asked for only when `field` has `value` (from an if/then of the schema)."""

    field: str
    value: Any


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    section: str
    order: int
    required: bool
    widget: str
    schema: dict[str, Any]
    help: str = ""
    placeholder: str = ""
    condition: Condition | None = None

    @property
    def format(self) -> str | None:
        return self.schema.get("format") or WIDGET_FORMATS.get(self.widget)

    @property
    def format_message(self) -> str:
        """The Chinese message of a value that fails this field's format (also used by the instant checks)."""
        fmt = FORMATS.get(self.format or "")
        return fmt.message.format(label=self.label) if fmt else ""

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(str(value) for value in self.schema.get("enum", ()))

    @property
    def is_yuan(self) -> bool:
        return self.widget == "yuan"

    @property
    def input_type(self) -> str:
        return {"date": "date", "phone": "tel"}.get(self.widget, "text")

    @property
    def inputmode(self) -> str | None:
        if self.is_yuan or self.schema.get("type") == "number":
            return "decimal"
        if self.widget in ("phone", "bank_card", "bank_account") or self.schema.get("type") == "integer":
            return "numeric"
        return None

    @property
    def max_length(self) -> int | None:
        if "maxLength" in self.schema:
            return int(self.schema["maxLength"])
        return {"id_number": 18, "uscc": 18, "phone": 16, "bank_card": 23, "bank_account": 40, "yuan": 24}.get(
            self.widget
        )


@dataclass(frozen=True)
class Section:
    title: str
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True)
class Check:
    rule: str
    field: str
    other: str
    message: str


@dataclass(frozen=True)
class SchemaForm:
    product: str
    title: str
    sections: tuple[Section, ...]
    schema: dict[str, Any]
    checks: tuple[Check, ...]

    # computed once per form (validation asks for them many times a row; an import validates thousands)
    @cached_property
    def fields(self) -> tuple[FieldSpec, ...]:
        return tuple(field for section in self.sections for field in section.fields)

    @cached_property
    def _by_name(self) -> dict[str, FieldSpec]:
        return {field.name: field for field in self.fields}

    def field(self, name: str) -> FieldSpec:
        return self._by_name[name]

    def validate(self, raw: Mapping[str, str]) -> dict[str, Any]:
        """Typed values of the fields that apply (hidden conditional fields are dropped); ValidationError
        (details: field -> Chinese message) listing every problem at once."""
        return _validate(self, raw)


# --- loading and building ---------------------------------------------------------------------------


@cache
def load_base_schema(product: str) -> dict[str, Any]:
    path = BASE_SCHEMAS / f"{product}.schema.json"
    if not path.is_file():
        raise ConfigError("该业务尚无表单定义", code="FORM_SCHEMA_MISSING", details={"product": product})
    schema = json.loads(path.read_text(encoding="utf-8"))
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise ConfigError("表单定义无效", code="FORM_SCHEMA_INVALID", details={"product": product}) from error
    return schema


def _conditions(schema: Mapping[str, Any]) -> dict[str, Condition]:
    found = {}
    for item in schema.get("allOf", []):
        (name, rule), *rest = item["if"]["properties"].items()
        if rest or "const" not in rule:
            raise ConfigError("条件字段只支持单个字段取定值", code="FORM_SCHEMA_INVALID", details={"if": item["if"]})
        for target in item["then"].get("required", []):
            found[target] = Condition(name, rule["const"])
    return found


def _base_field(
    name: str, item: Mapping[str, Any], required: bool, condition: Condition | None, help_text: str | None = None
) -> FieldSpec:
    widget = item.get("x-widget")
    if widget is None:
        fmt = FORMATS.get(item.get("format", ""))
        widget = fmt.widget if fmt else "select" if "enum" in item else "text"
    examples = item.get("examples", [])
    return FieldSpec(
        name=name,
        label=item["title"],
        section=item["x-section"],
        order=item["x-order"],
        required=required,
        widget=widget,
        schema={key: value for key, value in item.items() if not key.startswith("x-")},
        help=help_text or item.get("description", ""),
        placeholder=str(examples[0]) if examples else "",
        condition=condition,
    )


def build_form(
    product: str, base: Mapping[str, Any], city_form: FormSpec | None, required_too: Mapping[str, str] | None = None
) -> SchemaForm:
    """One form: the base schema's fields, then the city's extra fields (which may not reuse a base name).
    `required_too` makes base fields the schema leaves optional required, each with its help text (name -> help)."""
    required_too = required_too or {}
    required = set(base.get("required", [])) | set(required_too)
    conditions = _conditions(base)
    fields = [
        _base_field(name, item, name in required, conditions.get(name), required_too.get(name))
        for name, item in base["properties"].items()
    ]
    section_titles = list(base["x-sections"])
    if city_form is not None:
        clash = {f.name for f in city_form.fields} & set(base["properties"])
        if clash:
            raise ConfigError("城市附加字段与基础表单重名", code="FORM_FIELD_CLASH", details={"fields": sorted(clash)})
        section_titles += [title for title in city_form.sections if title not in section_titles]
        fields += [
            FieldSpec(
                f.name, f.label, f.section, f.order, f.required, f.widget or _default_widget(f.schema), f.schema, f.help
            )
            for f in city_form.fields
        ]
    unknown = {f.section for f in fields} - set(section_titles)
    if unknown:
        raise ConfigError("表单字段的分组未声明", code="FORM_SCHEMA_INVALID", details={"sections": sorted(unknown)})
    rank = {title: index for index, title in enumerate(section_titles)}
    fields.sort(key=lambda f: (rank[f.section], f.order, f.name))
    sections = tuple(
        Section(title, tuple(f for f in fields if f.section == title))
        for title in section_titles
        if any(f.section == title for f in fields)
    )
    schema = {
        "type": "object",
        "required": [f.name for f in fields if f.required],
        "properties": {f.name: _checked_schema(f) for f in fields},
        "allOf": base.get("allOf", []),
    }
    checks = tuple(Check(**item) for item in base.get("x-checks", []))
    bad = [c.rule for c in checks if c.rule not in CHECK_RULES or {c.field, c.other} - set(schema["properties"])]
    if bad:
        raise ConfigError("一致性检查规则无效", code="FORM_SCHEMA_INVALID", details={"rules": bad})
    return SchemaForm(product, base["title"], sections, schema, checks)


def _default_widget(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "select"
    return "checkbox" if schema.get("type") == "boolean" else "text"


def _checked_schema(field: FieldSpec) -> dict[str, Any]:
    """The keywords that check the typed value; a widget-implied format is added for city fields."""
    schema = {key: value for key, value in field.schema.items() if key not in ("title", "description", "examples")}
    if field.format:
        schema["format"] = field.format
    return schema


# --- validation -------------------------------------------------------------------------------------


def _applies(field: FieldSpec, typed: Mapping[str, Any]) -> bool:
    return field.condition is None or typed.get(field.condition.field) == field.condition.value


def _coerce(field: FieldSpec, text: str) -> Any:
    """What was typed -> the JSON value the schema checks. Raises ValidationError with the Chinese message."""
    kind = field.schema.get("type")
    if field.is_yuan:
        return parse_yuan(text)
    if kind == "boolean":
        return text.lower() in _TRUE
    if kind == "integer":
        if not text.lstrip("-").isdigit():
            raise ValidationError(f"{field.label}应为整数", code="NOT_INTEGER")
        return int(text)
    if kind == "number":
        if not _DECIMAL.fullmatch(text):
            raise ValidationError(f"{field.label}应为数字，例如 89.37", code="NOT_NUMBER")
        return Decimal(text)
    fmt = FORMATS.get(field.format or "")
    return fmt.normalize(text) if fmt else text


def _amount(field: FieldSpec, value: int | float) -> str:
    return format_yuan(int(value)) if field.is_yuan else f" {value}"


def _message(field: FieldSpec, keyword: str, expected: Any) -> str:
    label = field.label
    if keyword == "format":
        return FORMATS[expected].message.format(label=label)
    if keyword == "minimum":
        positive = expected == 1 and field.schema.get("type") == "integer"
        return f"{label}必须大于零" if positive else f"{label}不能小于{_amount(field, expected)}"
    if keyword == "maximum":
        return f"{label}不能大于{_amount(field, expected)}"
    messages = {
        "minLength": f"{label}至少 {expected} 个字",
        "maxLength": f"{label}不能超过 {expected} 个字符",
        "pattern": f"{label}格式不正确",
        "enum": f"请选择{label}",
        "const": f"请选择{label}",
        "type": f"{label}格式不正确",
    }
    return messages.get(keyword, f"{label}无效")


def _same_text(value: str) -> str:
    return "".join(unicodedata.normalize("NFKC", value).split()).casefold()


def _check_fails(check: Check, left: Any, right: Any) -> bool:
    if check.rule == "same":
        return _same_text(left) != _same_text(right)
    if check.rule == "differ":
        return left == right
    if check.rule == "at_most":
        return left > right
    if check.rule == "less_than":
        return left >= right
    return left <= right  # greater_than


@cache
def _linear_validator() -> type[Draft202012Validator]:
    """Draft 2020-12 with `pattern` on the linear-time engine: a config's regex cannot stall a web process."""
    return validators.extend(Draft202012Validator, validators={"pattern": linear_pattern})


def _validate(form: SchemaForm, raw: Mapping[str, str]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    typed: dict[str, Any] = {}
    for field in form.fields:
        text = (raw.get(field.name) or "").strip()
        if not text and field.schema.get("type") != "boolean":
            continue
        try:
            typed[field.name] = _coerce(field, text)
        except ValidationError as error:
            errors[field.name] = error.message
    typed = {name: value for name, value in typed.items() if _applies(form.field(name), typed)}
    errors = {name: message for name, message in errors.items() if _applies(form.field(name), typed)}
    validator = _linear_validator()(form.schema, format_checker=format_checker())
    for error in validator.iter_errors(typed):
        if error.validator == "required":
            for name in error.validator_value:
                if name not in typed:
                    verb = "请选择" if form.field(name).widget in ("select", "radio") else "请填写"
                    errors.setdefault(name, f"{verb}{form.field(name).label}")
            continue
        name = str(error.absolute_path[0])
        errors.setdefault(name, _message(form.field(name), str(error.validator), error.validator_value))
    for check in form.checks:
        both = check.field in typed and check.other in typed and not {check.field, check.other} & set(errors)
        if both and _check_fails(check, typed[check.field], typed[check.other]):
            errors[check.field] = check.message
    if errors:
        raise ValidationError("表单有误，请按提示修改", code="FORM_INVALID", details=errors)
    return {name: _typed(form.field(name), value) for name, value in typed.items()}


def _typed(field: FieldSpec, value: Any) -> Any:
    """Dates become `datetime.date`; everything else is already typed (yuan fields are fen, number fields
    `Decimal`)."""
    return parse_date(value) if field.format == "date" else value
