"""Products are declarations (products/<code>.json): the registry, what it refuses, and city configs that
name a product (a registered one only, on the workflow and template its declaration is built on)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from app.banks.registry import configured_banks
from app.domain.city_checks import validate_file
from app.domain.products import ProductsInvalid, build_products
from app.platform.bootstrap import TEMPLATES_DIR
from app.platform.errors import ConfigError
from app.products.loader import REPOSITORY_FOLDER, products_from_documents, read_folder, repository_products
from tests.unit.test_city_checks import WORKFLOWS, _city, _problems, _write
from tests.unit.test_city_checks import folder as folder

PRODUCTS = repository_products()
SEED = read_folder(REPOSITORY_FOLDER)
NEW_HOME = {
    "workflow": {"id": "resale_escrow", "version": 1},
    "banks": ["ceb"],
    "agreement": {"template": "new_home_supervision/v1"},
}


def test_the_built_in_products_keep_their_names_prefixes_and_parties() -> None:
    facts = {code: (v.deal_prefix, v.base, v.parties) for code in PRODUCTS.codes() if (v := PRODUCTS.get(code))}
    assert facts == {
        "resale_escrow": ("RE", "resale_escrow", ("买方", "卖方")),
        "gov_escrow": ("GE", "gov_escrow", ("买方", "卖方")),
        "rent_custody": ("RC", "rent_custody", ("承租人", "出租人")),
        "provident_fund_rent": ("PF", "provident_fund_rent", ("承租人", "出租人")),
        "renovation_escrow": ("RN", "renovation_escrow", ("业主", "装修企业")),
        "intent_deposit": ("IN", "intent_deposit", ("意向购房人", "开发企业")),
        "guarantee_release": ("GR", "guarantee_release", ("申请人", "受益人")),
        "new_home_supervision": ("NH", "resale_escrow", ("买受人", "开发企业")),
    }
    assert PRODUCTS.get("resale_escrow").name == "二手房交易资金存管"
    assert PRODUCTS.get("new_home_supervision").name == "新房资金监管"
    assert PRODUCTS.get("rent_custody").releases_whole_contract
    assert not PRODUCTS.get("new_home_supervision").releases_whole_contract, "its base's amount rule: custody"


def test_an_unknown_product_code_is_a_chinese_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        PRODUCTS.get("villa_escrow")
    assert caught.value.code == "UNKNOWN_PRODUCT"
    assert (
        "未知业务 villa_escrow" in caught.value.message
        and "new_home_supervision（新房资金监管）" in caught.value.message
    )


def _declarations(**changes: dict[str, Any]) -> dict[str, Any]:
    documents = copy.deepcopy(SEED)
    for source, change in changes.items():
        documents[f"{source}.json"] = {**documents.get(f"{source}.json", SEED["new_home_supervision.json"]), **change}
    return documents


def test_declarations_that_cannot_run_are_refused_with_every_problem() -> None:
    documents = _declarations(
        villa_escrow={"code": "villa", "base": "villa_rules", "deal_prefix": "RE"},
        gov_escrow={"base": "resale_escrow"},
    )
    with pytest.raises(ProductsInvalid) as caught:
        build_products(documents)
    found = {(p.file, p.pointer): p.message for p in caught.value.problems}
    assert found[("villa_escrow.json", "/code")] == "业务代码 villa 与文件名不符"
    assert found[("villa_escrow.json", "/base")].startswith("基础业务 villa_rules 不存在")
    assert found[("villa_escrow.json", "/deal_prefix")] == "编号前缀 RE 已被业务 resale_escrow 使用"
    assert found[("gov_escrow.json", "/base")] == "内置业务的基础业务须为其本身"
    del documents["intent_deposit.json"]
    with pytest.raises(ProductsInvalid) as caught:
        build_products(documents)
    assert "缺少内置业务 intent_deposit 的定义" in [p.message for p in caught.value.problems]


def test_a_declaration_is_checked_against_its_schema_and_what_it_names() -> None:
    documents = _declarations(
        new_home_supervision={"form": "no_such_form", "agreement": {"template": "no_such/v1"}},
        cheap_home={"code": "cheap_home", "deal_prefix": "nh", "parties": {"payer": "买受人"}},
    )
    with pytest.raises(ProductsInvalid) as caught:
        products_from_documents(documents)
    found = {(p.file, p.pointer): p.message for p in caught.value.problems}
    assert found[("new_home_supervision.json", "/form")] == "基础表单 no_such_form 不存在"
    assert found[("new_home_supervision.json", "/agreement/template")] == "协议模板 no_such/v1 不存在"
    assert found[("cheap_home.json", "/deal_prefix")] == "不符合业务定义结构"
    assert found[("cheap_home.json", "/parties")] == "不符合业务定义结构"


def test_a_city_may_name_any_registered_product_and_no_other(folder: Path) -> None:
    _write(folder, "999901", _city(new_home_supervision=NEW_HOME))
    city = validate_file(folder / "999901.json", WORKFLOWS, TEMPLATES_DIR, configured_banks(), PRODUCTS)
    assert city.product("new_home_supervision").workflow_id == "resale_escrow"
    _write(folder, "999901", _city(villa_escrow=NEW_HOME))
    [unknown] = _problems(folder, "999901")
    assert unknown.pointer == "/products/villa_escrow" and unknown.message_en == "unknown product 'villa_escrow'"
    assert unknown.message.startswith("未知业务 villa_escrow（已登记的业务：")
    assert (
        "new_home_supervision（新房资金监管）" in unknown.message
        and "resale_escrow（二手房交易资金存管）" in unknown.message
    )


def test_a_variant_runs_on_its_declared_workflow_and_prints_its_own_agreement(folder: Path) -> None:
    wrong = {**NEW_HOME, "workflow": {"id": "gov_escrow", "version": 1}, "agreement": {"template": "resale_escrow/v1"}}
    _write(folder, "999901", _city(new_home_supervision=wrong))
    found = {p.pointer: p.message for p in _problems(folder, "999901")}
    assert (
        found["/products/new_home_supervision/workflow"]
        == "业务 新房资金监管 须使用工作流 resale_escrow（第 1 版或更新）"
    )
    assert found["/products/new_home_supervision/agreement/template"].startswith(
        "业务 新房资金监管 的协议模板须为 new_home_supervision 的某一版本"
    )
