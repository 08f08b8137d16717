"""Hypothesis fuzz of the three parsers that take outside input: the city-config validator (raw file bytes,
not only JSON values as in tests/unit/test_city_checks.py), the generated intake forms of every product and
the bank statement parser. Any input gives a result or a typed error, never another exception."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.banks.registry import configured_banks
from app.deals.sample_forms import SAMPLE_FORMS
from app.domain.cities import CityCatalog
from app.domain.city_checks import validate_file
from app.domain.forms.schema_form import build_form, load_base_schema
from app.domain.statements import ParsedStatement, parse_statement
from app.platform.bootstrap import CITY_CONFIGS_DIR, TEMPLATES_DIR, load_workflows
from app.platform.errors import ConfigError, ValidationError
from app.products.loader import repository_products
from tests.factories import resale_columns

WORKFLOWS = load_workflows()
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PRODUCTS = sorted(p.name.removesuffix(".schema.json") for p in (TEMPLATES_DIR.parent / "app/schemas/forms").glob("*"))
REGISTRY = repository_products()
SHIPPED_CITY = (CITY_CONFIGS_DIR / "310000.json").read_text(encoding="utf-8")

# --- city configs: raw bytes ------------------------------------------------------------------------------


@pytest.fixture
def city_folder(tmp_path: Path) -> Path:
    shutil.copy(CITY_CONFIGS_DIR / "_virtual.json", tmp_path / "_virtual.json")
    return tmp_path


def _near_city(draw: st.DrawFn) -> bytes:
    """The shipped Shanghai file with a few characters cut, repeated or replaced (mostly still JSON-like)."""
    text = SHIPPED_CITY.replace('"310000"', '"999902"')
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        end = draw(st.integers(at, min(len(text), at + 12)))
        text = text[:at] + draw(st.text(max_size=6)) + text[end:]
    return text.encode(draw(st.sampled_from(["utf-8", "utf-16", "gbk"])), errors="replace")


@FUZZ
@given(content=st.binary(max_size=300) | st.composite(_near_city)())
def test_city_file_bytes_give_a_city_or_a_config_error(city_folder: Path, content: bytes) -> None:
    path = city_folder / "999902.json"
    path.write_bytes(content)
    try:
        city = validate_file(path, WORKFLOWS, TEMPLATES_DIR, configured_banks(), REGISTRY)
    except ConfigError as error:
        assert error.message
    else:
        assert city.admin_code == "999902"


# --- intake forms -------------------------------------------------------------------------------------

VALUE = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["", " ", "0", "-1", "1e9", "NaN", "¥1,000.005", "2026-02-30", "11010519491231002X", "全款", "贷款"]
    ),
    st.integers(-(10**20), 10**20).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
)


def _city_forms() -> list[tuple[str, str, Any]]:
    """(city, product, the city's form fragment) for every product of every shipped city, and the bare forms."""
    catalog = CityCatalog(CITY_CONFIGS_DIR)
    found: list[tuple[str, str, Any]] = [("-", product, None) for product in PRODUCTS]
    for path in sorted(CITY_CONFIGS_DIR.glob("*.json")):
        city = catalog.load(path.stem)
        found += [(path.stem, product, config.form) for product, config in sorted(city.products.items())]
    return found


CITY_FORMS = _city_forms()


@FUZZ
@given(which=st.sampled_from(CITY_FORMS), data=st.data())
def test_every_generated_form_gives_clean_values_or_a_validation_error(
    which: tuple[str, str, Any], data: st.DataObject
) -> None:
    _, product, city_form = which
    form = build_form(product, load_base_schema(product), city_form)
    names = [f.name for f in form.fields]
    raw = data.draw(st.dictionaries(st.sampled_from(names) | st.text(max_size=5), VALUE, max_size=len(names) + 2))
    try:
        clean = form.validate(raw)
    except ValidationError as error:
        assert error.code and error.message
    else:
        assert isinstance(clean, dict)
        assert set(clean) <= set(names)


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(sorted(SAMPLE_FORMS["resale_escrow"])), VALUE, min_size=1, max_size=4))
def test_resale_form_with_a_few_fields_changed_is_clean_or_a_validation_error(changes: dict[str, str]) -> None:
    try:
        clean = resale_columns({**SAMPLE_FORMS["resale_escrow"], **changes})
    except ValidationError as error:
        assert isinstance(error.details, (dict, list)) and error.details
    else:
        assert isinstance(clean["custody_amount_fen"], int) and 0 < clean["custody_amount_fen"] <= clean["price_fen"]


# --- bank statements ----------------------------------------------------------------------------------

CELL = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "贷", "借", "C", "D", "1.00", "0.001", "-5", "100", "20261123", "2026-11-23", "25:61:00"]),
    st.integers(-(10**15), 10**15).map(str),
)


def _csv(headers: tuple[str, ...], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


@FUZZ
@given(
    bank=st.sampled_from(sorted(configured_banks())),
    rows=st.lists(st.lists(CELL, min_size=0, max_size=12), max_size=6),
    mangle=st.booleans(),
    raw=st.binary(max_size=200),
)
def test_statement_parser_gives_lines_and_problems_never_a_crash(
    bank: str, rows: list[list[str]], mangle: bool, raw: bytes
) -> None:
    layout = configured_banks()[bank].statement
    text = _csv(layout.headers, rows)
    content = text.encode(layout.encoding.replace("-sig", ""), errors="replace")
    if mangle:
        content = content[: len(content) // 2] + raw
    parsed = parse_statement(layout, content, date(2026, 11, 23))
    assert isinstance(parsed, ParsedStatement)
    assert len(parsed.lines) <= parsed.data_rows
    assert all(line.amount_fen > 0 for line in parsed.lines)
    assert all(problem.row > 0 and problem.reason for problem in parsed.problems)
    if not mangle and not rows:
        assert parsed.lines == () and parsed.problems == ()


def test_the_fuzz_corpus_is_not_empty() -> None:
    assert "resale_escrow" in PRODUCTS and len(PRODUCTS) >= 5
    assert any(city_form is not None for _, _, city_form in CITY_FORMS)
    assert json.loads(SHIPPED_CITY)["admin_code"] == "310000"
