"""Semantic checks of city configs, extends resolution, and a fuzz of the validator."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.banks.registry import configured_banks
from app.domain.cities import merge_patch
from app.domain.city_checks import validate_file
from app.domain.problems import CityConfigInvalid
from app.platform.bootstrap import CITY_CONFIGS_DIR, TEMPLATES_DIR, load_workflows
from app.platform.errors import ConfigError
from app.products.loader import repository_products

WORKFLOWS = load_workflows()
VIRTUAL = json.loads((CITY_CONFIGS_DIR / "_virtual.json").read_text(encoding="utf-8"))

PRODUCTS = repository_products()


def _write(folder: Path, stem: str, data: object) -> Path:
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _problems(folder: Path, stem: str) -> list:
    with pytest.raises(CityConfigInvalid) as caught:
        validate_file(folder / f"{stem}.json", WORKFLOWS, TEMPLATES_DIR, configured_banks(), PRODUCTS)
    problems = caught.value.problems
    assert all(p.file and p.pointer.startswith("/") and p.message and p.message_en for p in problems)
    return problems


def _city(**products: object) -> dict:
    return {"extends": "_virtual", "admin_code": "999901", "name": "测试市", "status": "draft", "products": products}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _write(tmp_path, "_virtual", VIRTUAL)
    return tmp_path


def test_a_child_inherits_and_null_removes_a_product(folder: Path) -> None:
    _write(folder, "999901", _city(gov_escrow=None, rent_custody={"banks": ["pab"]}))
    city = validate_file(folder / "999901.json", WORKFLOWS, TEMPLATES_DIR, configured_banks(), PRODUCTS)
    assert "gov_escrow" not in city.products and city.product("rent_custody").banks == ("pab",)
    assert city.product("rent_custody").deadlines["rent_cycle"] == "P1M", "inherited from _virtual"


def test_merge_patch_follows_rfc_7396() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None, "e": 3}, "d": [2]}) == {
        "a": {"c": 2, "e": 3},
        "d": [2],
    }


def test_extends_cycle_and_missing_parent_are_errors(folder: Path) -> None:
    _write(folder, "999901", {**_city(), "extends": "999902"})
    _write(folder, "999902", {**_city(), "admin_code": "999902", "extends": "999901"})
    [cycle] = _problems(folder, "999901")
    assert cycle.pointer == "/extends" and "循环" in cycle.message and "cycle" in cycle.message_en
    _write(folder, "999903", {**_city(), "admin_code": "999903", "extends": "_nowhere"})
    [missing] = _problems(folder, "999903")
    assert missing.file == "999903.json" and "_nowhere.json" in missing.message


def _mutated(mutate: Callable[[dict], None]) -> dict:
    data = _city(**{name: None for name in VIRTUAL["products"] if name not in ("renovation_escrow", "rent_custody")})
    data["products"]["renovation_escrow"] = copy.deepcopy(VIRTUAL["products"]["renovation_escrow"])
    data["products"]["rent_custody"] = {"banks": ["ceb"]}
    mutate(data["products"])
    return data


CASES = [
    (lambda p: p["renovation_escrow"].update(banks=["ceb", "hsbc"]), "/products/renovation_escrow/banks/1", "未知银行"),
    (
        lambda p: p["renovation_escrow"].update(workflow={"id": "renovation_escrow", "version": 9}),
        "/products/renovation_escrow/workflow",
        "不存在",
    ),
    (
        lambda p: p["renovation_escrow"]["agreement"].update(template="renovation_escrow/v7"),
        "/products/renovation_escrow/agreement/template",
        "协议模板",
    ),
    (
        lambda p: p["renovation_escrow"]["agreement"].update(clauses=["dispute", "no_such_clause"]),
        "/products/renovation_escrow/agreement/clauses/1",
        "条款",
    ),
    (
        lambda p: p["rent_custody"].update(parameters={"undeclared": 1}),
        "/products/rent_custody/parameters/undeclared",
        "未声明参数",
    ),
    (
        lambda p: p["rent_custody"].update(parameters={"rent_months_exempt": "3"}),
        "/products/rent_custody/parameters/rent_months_exempt",
        "整数",
    ),
    (
        lambda p: p["rent_custody"].update(parameters={"rent_months_exempt": 3.0}),
        "/products/rent_custody/parameters/rent_months_exempt",
        "结构",
    ),
    (
        lambda p: p["rent_custody"].update(deadlines={"rent_cycle": "P0D"}),
        "/products/rent_custody/deadlines/rent_cycle",
        "必须为正",
    ),
    (
        lambda p: p["rent_custody"].update(deadlines={"rent_cycle": "monthly"}),
        "/products/rent_custody/deadlines/rent_cycle",
        "时长",
    ),
    (
        lambda p: p["rent_custody"].update(parameters={"rent_cycle": "P1M"}),
        "/products/rent_custody/parameters/rent_cycle",
        "deadlines",
    ),
    (
        lambda p: p["renovation_escrow"]["release"]["tranches"].insert(0, {"label": "预付", "share_bps": 2000}),
        "/products/renovation_escrow/release/tranches",
        "超过托管金额",
    ),
    (
        lambda p: p["renovation_escrow"]["release"]["tranches"].pop(),
        "/products/renovation_escrow/release/tranches",
        "余款无从释放",
    ),
    (
        lambda p: p["renovation_escrow"]["release"].update(conditions=["no_such_event"]),
        "/products/renovation_escrow/release/conditions/0",
        "不是工作流事件",
    ),
    (lambda p: p["renovation_escrow"].update(release=None), "/products/renovation_escrow", "分阶段"),
    (
        lambda p: p["renovation_escrow"].update(custody={"min_fen": 10, "max_fen": 1}),
        "/products/renovation_escrow/custody",
        "下限高于上限",
    ),
    (
        lambda p: p["renovation_escrow"]["form"]["schema"]["properties"]["scope"].update({"x-section": "别处"}),
        "/products/renovation_escrow/form/schema/properties/scope/x-section",
        "未声明",
    ),
    (
        lambda p: p["renovation_escrow"]["form"]["schema"]["required"].append("ghost"),
        "/products/renovation_escrow/form/schema/required/2",
        "未定义",
    ),
    (
        lambda p: p["renovation_escrow"].update(
            fees=[{"name": "费", "payer": "owner", "kind": "fixed", "amount_fen": 1.5}]
        ),
        "/products/renovation_escrow/fees/0",
        "结构",
    ),
]


@pytest.mark.parametrize(("mutate", "pointer", "zh"), CASES)
def test_each_semantic_check_names_file_pointer_and_problem(folder: Path, mutate, pointer: str, zh: str) -> None:
    _write(folder, "999901", _mutated(mutate))
    problems = _problems(folder, "999901")
    assert any(p.pointer.startswith(pointer) and zh in p.message for p in problems), [str(p) for p in problems]
    assert all(p.file == "999901.json" for p in problems if p.pointer.startswith(pointer))


def test_the_fixture_itself_is_valid(folder: Path) -> None:
    _write(folder, "999901", _mutated(lambda products: None))
    assert (
        validate_file(folder / "999901.json", WORKFLOWS, TEMPLATES_DIR, configured_banks(), PRODUCTS).admin_code
        == "999901"
    )


def test_an_error_inherited_from_the_parent_names_the_parent(folder: Path) -> None:
    broken = copy.deepcopy(VIRTUAL)
    broken["products"]["intent_deposit"]["banks"] = ["nobank"]
    _write(folder, "_virtual", broken)
    _write(folder, "999901", _city())
    [problem] = _problems(folder, "999901")
    assert (problem.file, problem.pointer) == ("_virtual.json", "/products/intent_deposit/banks/0")


def test_file_name_must_match_admin_code(folder: Path) -> None:
    _write(folder, "999909", _city())
    [problem] = _problems(folder, "999909")
    assert problem.pointer == "/admin_code"


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["admin_code", "name", "status", "timezone", "products", "extends", "x"])
PRODUCT = st.fixed_dictionaries(
    {},
    optional={
        "workflow": JSONISH,
        "banks": JSONISH,
        "agreement": JSONISH,
        "parameters": JSONISH,
        "deadlines": st.dictionaries(st.text(max_size=12), JSONISH, max_size=3),
        "release": JSONISH,
        "form": JSONISH,
        "fees": JSONISH,
    },
)
CITYISH = st.dictionaries(KEYS, JSONISH, max_size=6) | st.builds(
    lambda patch, products: merge_patch(_city(), {**patch, "products": products}),
    st.dictionaries(KEYS, JSONISH, max_size=3),
    st.dictionaries(st.sampled_from(list(VIRTUAL["products"])), PRODUCT | st.none(), max_size=3),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=CITYISH | JSONISH)
def test_fuzz_any_input_gives_a_city_or_a_config_error(folder: Path, data: object) -> None:
    _write(folder, "999901", data)
    try:
        city = validate_file(folder / "999901.json", WORKFLOWS, TEMPLATES_DIR, configured_banks(), PRODUCTS)
    except ConfigError as error:
        assert error.message and error.details
    else:
        assert city.admin_code == "999901"


@pytest.mark.parametrize(("value", "refused"), [(-1, True), (0, False)])
def test_a_parameter_outside_its_workflows_bounds_is_refused_at_the_bound(
    folder: Path, value: int, refused: bool
) -> None:
    """rent_custody declares rent_months_exempt ≥ 0: -1 would hold more than the rent due."""
    _write(folder, "999901", _mutated(lambda p: p["rent_custody"].update(parameters={"rent_months_exempt": value})))
    if not refused:
        city = validate_file(folder / "999901.json", WORKFLOWS, TEMPLATES_DIR, configured_banks(), PRODUCTS)
        assert city.product("rent_custody").parameters["rent_months_exempt"] == 0
        return
    [problem] = _problems(folder, "999901")
    assert problem.pointer == "/products/rent_custody/parameters/rent_months_exempt"
    assert problem.message == "参数 rent_months_exempt（免于监管的预收租金月数）不得小于 0"
