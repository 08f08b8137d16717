"""Banks and product variants as kinds of the publishing flow: their seed (`bank_configs/<code>.json`,
`products/<code>.json`), their checks (every problem in Chinese) and which city products a draft's simulation
runs. A definition is named by its code; its content is the JSON document its file would hold."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Protocol

from app.banks.registry import BANK_CONFIGS_DIR
from app.domain.banks import BankConfigInvalid, bank_from_document
from app.domain.cities import CityConfig
from app.domain.problems import Problem
from app.domain.products import ProductsInvalid, build_products
from app.products.loader import REPOSITORY_FOLDER, declaration_problems

TEMPLATE_FILE = "agreement.html.j2"
# what a running deal computes with: a published variant keeps them in every later version
FIXED_PRODUCT_FACTS = {"base": "基础业务", "deal_prefix": "编号前缀", "form": "基础表单"}


class Served(Protocol):
    """What the publishing flow serves now (`app.definitions.store.DefinitionStore`): checks that look at other
    definitions (a product variant's template and workflow, its deal-number prefix) read it."""

    def published_hashes(self, kind: str) -> dict[str, str]: ...

    def content(self, kind: str, name: str, sha256: str) -> str | None: ...


def _said(problems: list[Problem]) -> list[str]:
    return [f"{problem.pointer}：{problem.message}" for problem in problems]


def _document(content: str) -> tuple[Any, list[str]]:
    try:
        return json.loads(content), []
    except ValueError as error:
        return None, [f"不是合法的 JSON：{error}"]


# --- banks: named by their code ------------------------------------------------------------------------------


@cache
def bank_seed() -> Mapping[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(BANK_CONFIGS_DIR.glob("*.json"))}


def bank_problems(name: str, content: str) -> list[str]:
    """Everything the bank checks find (schema, protocol v1, account-number pattern, statement layout), and a
    code other than the name."""
    doc, found = _document(content)
    if found:
        return found
    try:
        bank = bank_from_document(doc, f"{name}.json")
    except BankConfigInvalid as invalid:
        return [f"{problem.pointer}：{problem.message}（{problem.message_en}）" for problem in invalid.problems]
    return [] if bank.code == name else [f"文档声明的银行代码为 {bank.code}，与名称 {name} 不一致"]


def uses_bank(city: CityConfig, product: str, name: str) -> bool:
    return name in city.product(product).banks


# --- product variants: named by their code -------------------------------------------------------------------


@cache
def product_seed() -> Mapping[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(REPOSITORY_FOLDER.glob("*.json"))}


def served_documents(served: Served, kind: str) -> dict[str, Any]:
    """name -> parsed document of every `kind` served now (one that does not parse is left out)."""
    found = {}
    for name, sha256 in served.published_hashes(kind).items():
        doc, problems = _document(served.content(kind, name, sha256) or "")
        if not problems:
            found[name] = doc
    return found


def template_exists(served: Served) -> Callable[[str], bool]:
    """Whether an agreement template version ("<folder>/v<n>") is served: a repository file or published."""
    names = served.published_hashes("template")
    return lambda template: f"{template}/{TEMPLATE_FILE}" in names


def product_problems(served: Served, name: str, content: str) -> list[str]:
    """The declaration's schema, its form, its agreement template and workflow served now, the registry's rules
    with every other served variant (a deal-number prefix used twice…), and, for a published variant, the facts
    running deals compute with unchanged."""
    data, found = _document(content)
    if found:
        return found
    source, exists = f"{name}.json", template_exists(served)
    problems = declaration_problems(source, data, exists)
    if problems:
        return _said(problems)
    workflow = f"{data['workflow']['id']}@{data['workflow']['version']}"
    if workflow not in served.published_hashes("workflow"):
        found.append(f"/workflow：工作流 {workflow} 未发布")
    others = served_documents(served, "product")
    published = others.pop(name, None)
    valid = {f"{code}.json": doc for code, doc in others.items() if not declaration_problems(code, doc, exists)}
    found += [
        f"/deal_prefix：编号前缀 {data['deal_prefix']} 已被业务 {doc['code']} 使用"
        for doc in valid.values()
        if doc["deal_prefix"] == data["deal_prefix"]
    ]
    try:
        build_products({**valid, source: data})
    except ProductsInvalid as invalid:  # the prefix is said above, whichever declaration comes first
        found += _said([p for p in invalid.problems if p.file == source and p.pointer != "/deal_prefix"])
    if isinstance(published, dict):
        found += [
            f"/{key}：业务 {name} 已发布，{label}不能再改（运行中的存管单按它计算）；请新建业务代码"
            for key, label in FIXED_PRODUCT_FACTS.items()
            if published.get(key) != data.get(key)
        ]
        if published.get("workflow", {}).get("id") != data["workflow"]["id"]:
            found.append(f"/workflow/id：业务 {name} 已发布，工作流不能换成另一个")
    return found


def uses_product(city: CityConfig, product: str, name: str) -> bool:
    return product == name
