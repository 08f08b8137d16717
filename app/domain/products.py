"""The product registry: every product is a declaration (`products/<code>.json`, schema
`app/schemas/product.schema.json`): its code, Chinese name, deal-number prefix, the base product whose domain
rules it reuses, its workflow, base intake form and agreement template, and what its parties are called.

Pure lookups, built from parsed documents (`build_products`): the repository's files are the seed
(`app/products/loader.py`); a published version of the declarations is read the same way. Code that used to
compare product codes asks the registry for a product's base (`base_of`) or its facts (`get`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.domain.problems import Problem
from app.platform.errors import ConfigError

# the products whose rules exist in code (intake mapping, guards and actions, payee and amount rules): every
# declared product is one of them or a variant built on one
BASE_PRODUCTS = frozenset(
    {
        "resale_escrow",
        "gov_escrow",
        "rent_custody",
        "provident_fund_rent",
        "renovation_escrow",
        "intent_deposit",
        "guarantee_release",
    }
)
# base products whose agreement covers a whole lease (every month's rent and the deposit): releases may reach
# the contract's value; every other product releases at most the custody amount its agreement names
WHOLE_CONTRACT_BASES = frozenset({"rent_custody", "provident_fund_rent"})


@dataclass(frozen=True)
class ProductVariant:
    code: str
    name: str  # 中文名称, on screens and in the agreement
    deal_prefix: str  # deal numbers start with it
    base: str  # the base product whose domain rules it runs (itself for a built-in product)
    workflow_id: str
    workflow_version: int  # the oldest version of its workflow a city may run it on
    form: str  # base intake form: app/schemas/forms/<form>.schema.json
    agreement_template: str  # "<folder>/v<n>"
    payer_label: str  # the paying party (the deal's buyer_* columns)
    payee_label: str  # the receiving party (seller_*), whom releases pay
    payee_role: str  # the receiving role payee amendments name
    whole_release: str | None = None  # why the product cannot split a release (its plan is one remainder tranche)

    @property
    def parties(self) -> tuple[str, str]:
        return self.payer_label, self.payee_label

    @property
    def template_folder(self) -> str:
        return self.agreement_template.split("/")[0]

    @property
    def releases_whole_contract(self) -> bool:
        return self.base in WHOLE_CONTRACT_BASES


class ProductsInvalid(ConfigError):
    """Product declarations that must not be used; `problems` lists every problem found."""

    code = "PRODUCTS_INVALID"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"业务定义有 {len(problems)} 处错误", details=[problem.to_dict() for problem in problems])
        self.problems = problems


class ProductRegistry:
    """Every declared product by code."""

    def __init__(self, variants: Iterable[ProductVariant]) -> None:
        self._variants = {variant.code: variant for variant in variants}

    def __contains__(self, code: object) -> bool:
        return code in self._variants

    def codes(self) -> list[str]:
        return sorted(self._variants)

    def frozen(self) -> ProductRegistry:
        """These products as they are now, in a registry that does not change (one read of a published one)."""
        return ProductRegistry(self._variants.values())

    def known_text(self) -> str:
        """The known products for a Chinese message: 代码（名称）、…"""
        variants = self._variants
        return "、".join(f"{code}（{variants[code].name}）" for code in sorted(variants))

    def get(self, code: str) -> ProductVariant:
        variants = self._variants  # read once: a published registry reads the database for it
        if code not in variants:
            raise ConfigError(
                f"未知业务 {code}（已登记的业务：{self.known_text()}）",
                code="UNKNOWN_PRODUCT",
                details={"product": code, "known": self.codes()},
            )
        return variants[code]

    def base_of(self, code: str) -> str:
        return self.get(code).base


def variant_of(data: Mapping[str, Any]) -> ProductVariant:
    """The variant of one schema-valid declaration (a deal's pinned version is read with it)."""
    parties = data["parties"]
    return ProductVariant(
        code=data["code"],
        name=data["name"],
        deal_prefix=data["deal_prefix"],
        base=data["base"],
        workflow_id=data["workflow"]["id"],
        workflow_version=data["workflow"]["version"],
        form=data["form"],
        agreement_template=data["agreement"]["template"],
        payer_label=parties["payer"],
        payee_label=parties["payee"],
        payee_role=parties["payee_role"],
        whole_release=data.get("whole_release"),
    )


def build_products(documents: Mapping[str, Mapping[str, Any]]) -> ProductRegistry:
    """The registry from schema-valid declarations (source name -> document); ProductsInvalid names every
    problem: a code that is not its file's, a base without rules in code, a built-in that is not its own base,
    a deal-number prefix used twice."""
    problems: list[Problem] = []
    variants = []
    prefixes: dict[str, str] = {}
    for source, data in sorted(documents.items()):
        variant = variant_of(data)
        variants.append(variant)
        if source.removesuffix(".json") != variant.code:
            problems.append(Problem(source, "/code", f"业务代码 {variant.code} 与文件名不符", "code is not the file's"))
        if variant.base not in BASE_PRODUCTS:
            known = "、".join(sorted(BASE_PRODUCTS))
            problems.append(
                Problem(source, "/base", f"基础业务 {variant.base} 不存在（可选：{known}）", "unknown base product")
            )
        elif variant.code in BASE_PRODUCTS and variant.base != variant.code:
            problems.append(Problem(source, "/base", "内置业务的基础业务须为其本身", "a base product is its own base"))
        if variant.deal_prefix in prefixes:
            problems.append(
                Problem(
                    source,
                    "/deal_prefix",
                    f"编号前缀 {variant.deal_prefix} 已被业务 {prefixes[variant.deal_prefix]} 使用",
                    "deal prefix used twice",
                )
            )
        prefixes.setdefault(variant.deal_prefix, variant.code)
    missing = BASE_PRODUCTS - {variant.code for variant in variants}
    problems += [
        Problem(f"{code}.json", "/", f"缺少内置业务 {code} 的定义", "base product missing") for code in sorted(missing)
    ]
    if problems:
        raise ProductsInvalid(problems)
    return ProductRegistry(variants)
