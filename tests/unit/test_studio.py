"""The config studio's form model (app/studio): every shipped city config → form → the same document; display
units typed back exactly (yuan → fen, % / ‰ → basis points, days / working days / months); Chinese errors at
their fields."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.banks.registry import configured_banks
from app.domain.cities import merge_patch
from app.domain.problems import Problem
from app.platform.bootstrap import CITY_CONFIGS_DIR, load_workflows
from app.products.loader import repository_products
from app.studio.city_form import CityStudio
from app.studio.messages import plain
from app.studio.raw import line_of, problem_lines
from app.studio.runtime_catalog import build_catalog
from app.studio.units import UnitError, parse_bps, parse_duration_input, parse_fen
from tests.studio_inputs import form_inputs

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "app" / "schemas"
SCHEMA = json.loads((SCHEMA_DIR / "city.schema.json").read_text("utf-8"))
STUDIO = CityStudio(SCHEMA, build_catalog(repository_products(), load_workflows(), configured_banks()))
CONFIGS = sorted(CITY_CONFIGS_DIR.glob("*.json"))


def _load(stem: str) -> dict[str, Any]:
    return json.loads((CITY_CONFIGS_DIR / f"{stem}.json").read_text("utf-8"))


def _parent(document: dict[str, Any]) -> dict[str, Any] | None:
    stem = document.get("extends")
    if stem is None:
        return None
    own = _load(stem)
    return merge_patch(_parent(own) or {}, {k: v for k, v in own.items() if k != "extends"})


def _field(form: Any, key: str) -> Any:
    return next(f for s in form.sections for f in s.all_fields() if f.key == key)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_round_trips_through_the_form(path: Path) -> None:
    document = json.loads(path.read_text("utf-8"))
    parent = _parent(document)
    posted = form_inputs(STUDIO.form(document, parent))
    again, errors = STUDIO.read(posted, document, parent)
    assert errors == {}
    assert again == document
    assert list(again) == list(document)


def test_values_are_shown_in_display_units() -> None:
    document = _load("_virtual")
    form = STUDIO.form(document, None)
    assert _field(form, "products/resale_escrow/approvals/0/above_fen").value == "5000000"
    assert _field(form, "products/renovation_escrow/release/tranches/0/share_bps").value == "30"
    assert _field(form, "products/renovation_escrow/release/tranches/0/share_bps").unit == "%"
    deadline = _field(form, "products/gov_escrow/deadlines/funding_deadline")
    assert (deadline.value, deadline.unit) == ("15", "days")
    hangzhou = _load("330100")
    deadline = _field(STUDIO.form(hangzhou, _parent(hangzhou)), "products/gov_escrow/deadlines/funding_deadline")
    assert (deadline.value, deadline.unit, deadline.cut_off) == ("3", "working_days", True)
    assert all(f.key != "status" for s in form.sections for f in s.all_fields()), "going live is a step, not a field"


def _nanjing() -> dict[str, Any]:
    return {**_load("_virtual"), "admin_code": "320100", "name": "南京"}


def test_editing_through_the_form_writes_exact_fen_and_basis_points() -> None:
    document = _nanjing()
    posted = form_inputs(STUDIO.form(document, None))
    fees = "products/resale_escrow/fees/0"
    posted |= {f"{fees}/name": ["资金存管服务费"], f"{fees}/payer": ["seller"], f"{fees}/kind": ["rate"]}
    posted |= {f"{fees}/bps": ["3"], f"{fees}/bps:unit": ["‰"], f"{fees}/min_fen": ["1,000.5"]}
    tranches = "products/resale_escrow/release/tranches"
    posted |= {f"{tranches}/0/label": ["首期"], f"{tranches}/0/share_bps": ["90"], f"{tranches}/0/remainder": []}
    posted.pop(f"{tranches}/0/remainder", None)
    posted |= {
        f"{tranches}/1/label": ["尾款"],
        f"{tranches}/1/remainder": ["1"],
        f"{tranches}/1/event": ["title_transferred"],
    }
    posted["products/gov_escrow/deadlines/funding_deadline"] = ["3"]
    posted["products/gov_escrow/deadlines/funding_deadline:unit"] = ["working_days"]
    posted["products/resale_escrow/custody/min_fen"] = ["0.01"]
    posted.pop("products/guarantee_release/_on")
    new, errors = STUDIO.read(posted, document, None)
    assert errors == {}
    resale = new["products"]["resale_escrow"]
    assert resale["fees"] == [
        {"name": "资金存管服务费", "payer": "seller", "kind": "rate", "bps": 30, "min_fen": 100050}
    ]
    assert resale["release"]["tranches"] == [
        {"label": "首期", "share_bps": 9000},
        {"label": "尾款", "remainder": True, "event": "title_transferred"},
    ]
    assert resale["custody"] == {"min_fen": 1}
    assert new["products"]["gov_escrow"]["deadlines"] == {"funding_deadline": {"working_days": 3}}
    assert "guarantee_release" not in new["products"]


def test_turning_off_an_inherited_product_writes_null() -> None:
    document = _load("370100")
    parent = _parent(document)
    posted = form_inputs(STUDIO.form(document, parent))
    posted.pop("products/provident_fund_rent/_on")
    posted["products/resale_escrow/_on"] = ["1"]
    posted["products/resale_escrow/banks"] = ["ccb"]
    posted["products/provident_fund_rent/_on"] = []
    posted.pop("products/provident_fund_rent/_on")
    new, errors = STUDIO.read(posted, document, parent)
    assert errors == {}
    assert new["products"]["provident_fund_rent"] is None
    assert new["products"]["resale_escrow"] == {"banks": ["ccb"]}


@pytest.mark.parametrize(
    ("key", "typed", "expected"),
    [
        ("products/resale_escrow/custody/min_fen", "一百元", "金额请填写数字"),
        ("products/resale_escrow/custody/min_fen", "1.234", "金额最多两位小数"),
        ("products/resale_escrow/approvals/0/above_fen", "-5", "金额请填写数字"),
        ("products/resale_escrow/approvals/0/approvers", "两人", "审批人数请填写整数"),
        ("products/renovation_escrow/release/tranches/0/share_bps", "千分之五", "比例请填写数字"),
        ("products/renovation_escrow/release/tranches/0/share_bps", "0.001", "比例最多精确到 0.01%"),
        ("products/resale_escrow/banks", "cmb", "未知银行：cmb（可选：农行、中行、建行、光大、民生、工行、平安）"),
    ],
)
def test_a_bad_value_gets_a_chinese_error_at_its_field(key: str, typed: str, expected: str) -> None:
    document = _nanjing()
    posted = form_inputs(STUDIO.form(document, None)) | {key: [typed]}
    _, errors = STUDIO.read(posted, document, None)
    assert expected in errors[key]
    form = STUDIO.form(document, None, posted, errors)
    assert expected in _field(form, key).error
    assert _field(form, key).value in (typed, [typed])


def test_units() -> None:
    assert parse_fen("1,234.5") == 123450
    assert parse_bps("0.05", "%") == 5
    assert parse_bps("5‰", "%") == 50
    with pytest.raises(UnitError, match="千分之五"):
        parse_bps("千分之五", "‰")
    assert parse_duration_input("1", "months", False) == "P1M"
    assert parse_duration_input("3", "working_days", True) == {"working_days": 3, "bank_cut_off": True}
    with pytest.raises(UnitError, match="时限须大于 0"):
        parse_duration_input("0", "days", False)


def test_raw_json_problems_are_placed_at_their_lines() -> None:
    text = '{\n  "name": "南京",\n  "products": {\n    "resale_escrow": {"banks": ["cmb"]}\n  }\n}\n'
    assert line_of(text, "/products/resale_escrow/banks/0") == 4
    assert line_of(text, "/name") == 2
    assert line_of(text, "/nowhere") is None
    assert problem_lines('{\n  "name": \n}') == [(3, "JSON 格式错误：第 3 行第 1 列，应为一个值")]


@pytest.mark.parametrize("name", ["city", "bank", "product", "calendar"])
def test_every_key_of_the_edited_schemas_has_a_chinese_title(name: str) -> None:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8"))
    untitled = []

    def walk(node: dict[str, Any], at: str) -> None:
        for key, child in node.get("properties", {}).items():
            if not re.search(r"[\u4e00-\u9fff]", str(child.get("title", ""))):
                untitled.append(f"{at}/{key}")
            walk(child, f"{at}/{key}")
        for key, child in node.get("$defs", {}).items():
            walk(child, f"#/$defs/{key}")

    walk(schema, "")
    assert untitled == []


def test_a_tranche_names_only_an_event_its_workflow_releases_on() -> None:
    form = STUDIO.form(_nanjing(), None)
    options = [o.value for o in _field(form, "products/resale_escrow/release/tranches/0/event").options]
    assert options == ["", "handover_done", "title_transferred"]  # resale_escrow v2


@pytest.mark.parametrize(
    ("english", "chinese"),
    [
        ("'somewhere' is not one of ['draft', 'live', 'suspended']", "只能选：draft, live, suspended"),
        ("-1 is less than the minimum of 0", "不得小于 0"),
        ("'5' is not of type 'integer'", "请填写数字"),
        ("Additional properties are not allowed ('colour' was unexpected)", "不认识的设置项：colour"),
        ("something new", "填写有误，不符合配置要求"),
    ],
)
def test_structural_problems_are_said_in_chinese(english: str, chinese: str) -> None:
    assert plain(Problem("320100.json", "/status", "不符合城市配置结构定义", english)) == chinese
    assert plain(Problem("320100.json", "/products/x/banks/0", "未知银行 cmb", "unknown bank"), STUDIO.catalog) == (
        "未知银行：cmb（可选：农行、中行、建行、光大、民生、工行、平安）"
    )


def test_the_catalog_offers_what_is_served_a_published_clause_by_its_title() -> None:
    """A clause written in the clause editor exists only in the database once published: the studio offers it
    (and a published template folder) like the shipped ones; the files are the default."""
    clause = '<section class="article"><h2>{{ clause_no }}　南京资金存管特别约定</h2><p>约定。</p></section>\n'
    served = build_catalog(
        repository_products(),
        load_workflows(),
        configured_banks(),
        template_files=["resale_escrow/v3/agreement.html.j2", "resale_escrow/v3/manifest.json", "shared/fees.html.j2"],
        clause_texts={"nanjing_notice": clause, "dispute": "<p>no heading</p>"},
    )
    assert served.clauses == {"dispute": "dispute", "nanjing_notice": "南京资金存管特别约定（nanjing_notice）"}
    assert served.templates == ("resale_escrow/v3",)
    files = STUDIO.catalog
    assert "nanjing_notice" not in files.clauses and files.clauses["dispute"].endswith("（dispute）")
    assert {"resale_escrow/v2", "resale_escrow/v3"} <= set(files.templates)
