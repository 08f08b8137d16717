"""The definition studio's form model (`app.studio.schema_form`): built from the bank, product-variant and calendar
schemas with their Chinese titles; a form posted unchanged gives the same document; a wrong value is refused in
Chinese at its field."""

from __future__ import annotations

import json

import pytest

from app.platform.config import ROOT
from app.studio.model import StudioForm
from app.studio.schema_form import SchemaStudio

SCHEMAS = ROOT / "app" / "schemas"


def _studio(kind: str) -> SchemaStudio:
    return SchemaStudio(json.loads((SCHEMAS / f"{kind}.schema.json").read_text("utf-8")), "定义")


def _labels(form: StudioForm) -> dict[str, str]:
    return {f.key: f.label for s in form.sections for f in s.fields} | {
        g.key: g.label for s in form.sections for g in s.groups
    }


def _posted(form: StudioForm) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for section in form.sections:
        for f in section.all_fields():
            if f.widget in ("checkbox", "flag"):
                if f.value:
                    out[f.key] = ["1"]
            elif not f.key.endswith("/_delete"):
                out[f.key] = [str(f.value)]
    return out


@pytest.mark.parametrize(
    ("kind", "key", "label", "widget"),
    [
        ("bank", "opening_limits/per_second", "每秒开户数", "number"),
        ("bank", "statement/amount_unit", "金额单位", "select"),
        ("bank", "account_number/luhn_check_digit", "Luhn 校验位", "checkbox"),
        ("product", "parties/payer", "付款方", "text"),
        ("calendar", "complete", "全年已齐全", "checkbox"),
        ("calendar", "holidays", "放假日", "rows"),
    ],
)
def test_the_form_model_is_built_from_each_schema_with_chinese_labels(
    kind: str, key: str, label: str, widget: str
) -> None:
    form = _studio(kind).form({})
    assert _labels(form)[key] == label
    fields = {f.key: f for s in form.sections for f in s.fields}
    assert (widget == "rows") == (key not in fields)
    if widget != "rows":
        assert fields[key].widget == widget


def test_a_bank_posted_unchanged_is_the_same_and_a_negative_limit_is_refused_at_its_field() -> None:
    studio = _studio("bank")
    bank = json.loads((ROOT / "bank_configs" / "ceb.json").read_text("utf-8"))
    typed = _posted(studio.form(bank))
    assert studio.read(typed, bank) == (bank, {})
    typed["opening_limits/per_day"] = ["0"]
    _, errors = studio.read(typed, bank)
    assert errors == {"opening_limits/per_day": "不得小于 1"}
    typed["opening_limits/per_day"] = ["-5"]
    _, errors = studio.read(typed, bank)
    form = studio.form(bank, typed, errors)
    field = next(f for s in form.sections for f in s.fields if f.key == "opening_limits/per_day")
    assert "整数" in field.error and field.value == "-5"


@pytest.mark.parametrize(
    ("kind", "folder"), [("bank", "bank_configs"), ("product", "products"), ("calendar", "calendars")]
)
def test_every_shipped_definition_posted_unchanged_is_the_same_document(kind: str, folder: str) -> None:
    studio = _studio(kind)
    paths = sorted((ROOT / folder).glob("*.json"))
    assert paths
    for path in paths:
        document = json.loads(path.read_text("utf-8"))
        assert studio.read(_posted(studio.form(document)), document) == (document, {}), path.name


def test_a_multi_line_certificate_is_a_textarea_and_keeps_its_line_breaks() -> None:
    studio = _studio("bank")
    bank = json.loads((ROOT / "bank_configs" / "ceb.json").read_text("utf-8"))
    bank["certificate"] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    form = studio.form(bank)
    field = next(f for s in form.sections for f in s.fields if f.key == "certificate")
    assert field.widget == "textarea"
    typed = _posted(form)
    typed["certificate"] = [str(field.value).replace("\n", "\r\n").strip()]  # as a browser posts a textarea
    assert studio.read(typed, bank) == (bank, {})
