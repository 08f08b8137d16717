"""Read the product declarations: JSON Schema (`app/schemas/product.schema.json`), then what they name must
exist (the base intake form, the agreement template), then the registry's own rules
(`app.domain.products.build_products`). The repository's `products/` folder is the seed; a publishing flow
passes its parsed documents to `products_from_documents` the same way."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators

from app.domain.problems import Problem, pointer
from app.domain.products import ProductRegistry, ProductsInvalid, build_products
from app.platform.config import ROOT

SCHEMA_PATH = ROOT / "app" / "schemas" / "product.schema.json"
FORMS_DIR = ROOT / "app" / "schemas" / "forms"
TEMPLATES_DIR = ROOT / "agreement_templates"
REPOSITORY_FOLDER = ROOT / "products"


@cache
def _validator() -> Draft202012Validator:
    strict_types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return validators.extend(Draft202012Validator, type_checker=strict_types)(
        json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    )


def template_file_exists(template: str) -> bool:
    """Whether the repository has the agreement template `template` ("<folder>/v<n>")."""
    return (TEMPLATES_DIR / template / "agreement.html.j2").is_file()


def declaration_problems(
    source: str, data: Any, template_exists: Callable[[str], bool] = template_file_exists
) -> list[Problem]:
    """The schema's problems, then a base form or agreement template that does not exist (`template_exists`:
    the repository's files, or what the publishing flow serves)."""
    problems = [
        Problem(source, pointer(*error.absolute_path), "不符合业务定义结构", error.message)
        for error in _validator().iter_errors(data)
    ]
    if problems:
        return problems
    if not (FORMS_DIR / f"{data['form']}.schema.json").is_file():
        problems.append(Problem(source, "/form", f"基础表单 {data['form']} 不存在", "unknown intake form"))
    template = data["agreement"]["template"]
    if not template_exists(template):
        problems.append(Problem(source, "/agreement/template", f"协议模板 {template} 不存在", "unknown template"))
    return problems


def products_from_documents(
    documents: Mapping[str, Any], template_exists: Callable[[str], bool] = template_file_exists
) -> ProductRegistry:
    """The registry from parsed declarations (source name such as `new_home_supervision.json` -> document);
    ProductsInvalid names every problem of every document."""
    problems = [
        problem
        for source, data in sorted(documents.items())
        for problem in declaration_problems(source, data, template_exists)
    ]
    if problems:
        raise ProductsInvalid(problems)
    return build_products(documents)


def read_folder(folder: Path) -> dict[str, Any]:
    """Every declaration of `folder`, parsed (a file that is not JSON is a problem of its own)."""
    documents = {}
    for path in sorted(folder.glob("*.json")):
        try:
            documents[path.name] = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ProductsInvalid([Problem(path.name, "/", "不是有效的 JSON", str(error))]) from None
    return documents


@cache
def repository_products() -> ProductRegistry:
    """The shipped declarations (`products/`), read once per process."""
    return products_from_documents(read_folder(REPOSITORY_FOLDER))
