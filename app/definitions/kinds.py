"""The kinds of published definition besides city configs, each one registration: where its repository files
(the seed) are, how a document is named and checked. A check returns every problem in Chinese; a document
with a problem is refused at submission and at simulation, never published.

Adding a kind is one `Kind` in `build_kinds`: its seed and its check. Banks and product variants are in
`app.definitions.declarations`."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

from jinja2 import DictLoader, TemplateSyntaxError

from app.calendars.loader import CalendarInvalid, parse_year
from app.definitions.declarations import (
    Served,
    bank_problems,
    bank_seed,
    product_problems,
    product_seed,
    uses_bank,
    uses_product,
)
from app.domain.cities import CityConfig
from app.pdf.render import DEFAULT_CLAUSES, agreement_environment, manifest_problem
from app.platform.config import ROOT
from app.platform.errors import WorkflowError
from app.state_machine.loader import build_definition
from app.state_machine.registry import Registry

log = logging.getLogger("cunguan.definitions")

WORKFLOWS_DIR = ROOT / "workflows"
TEMPLATES_DIR = ROOT / "agreement_templates"
CALENDARS_DIR = ROOT / "calendars"
CLAUSES = "clauses"

# (the platform's workflow vocabulary, what is served now, the definition's name, its content) -> problems, in Chinese
Check = Callable[[Registry, Served, str, str], list[str]]
# (a city config, one of its products) -> does the product use the definition `name`?
Uses = Callable[[CityConfig, str, str], bool]


def content_sha256(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Kind:
    code: str
    label: str  # Chinese, for people
    seed: Callable[[], Mapping[str, str]]  # name -> content of the repository files (read once per process)
    check: Check
    uses: Uses  # which city products a draft's simulation runs
    immutable: bool = False  # a published name never gets other content (a new one is a new name)


# --- workflows: named "<id>@<version>"; a version, once published, never changes ---------------------------


def workflow_name(workflow_id: str, version: int) -> str:
    return f"{workflow_id}@{version}"


def _workflow_data(content: str) -> object:
    try:
        return json.loads(content)
    except json.JSONDecodeError as error:
        raise ValueError(f"不是合法的 JSON：{error}") from None


def workflow_name_of(content: str) -> str | None:
    """The name a workflow document declares ("<id>@<version>"), None when it declares none."""
    try:
        data = _workflow_data(content)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("version"), int):
        return None
    return workflow_name(data["id"], data["version"])


@cache
def _workflow_seed() -> Mapping[str, str]:
    found = {}
    for path in sorted(WORKFLOWS_DIR.glob("*.json")):
        content = path.read_text(encoding="utf-8")
        name = workflow_name_of(content)
        if name is None:
            log.error("workflow file %s declares no id and version: not loaded", path.name)
            continue
        found[name] = content
    return found


def _workflow_problems(registry: Registry, _served: Served, name: str, content: str) -> list[str]:
    try:
        data = _workflow_data(content)
    except ValueError as error:
        return [str(error)]
    declared = workflow_name_of(content)
    if declared != name:
        return [f"文档声明的工作流为 {declared or '（无 id/version）'}，与名称 {name} 不一致"]
    try:
        build_definition(data, registry, name)
    except WorkflowError as error:
        details = error.details if isinstance(error.details, list) else []
        return [error.message] + [f"{item['pointer']}：{item['message']}（{item['message_en']}）" for item in details]
    return []


def _uses_workflow(city: CityConfig, product: str, name: str) -> bool:
    return city.product(product).workflow_id == name.partition("@")[0]


# --- agreement templates and clauses: Jinja2 source compiled in the agreement sandbox ----------------------


def _template_problems(name: str, content: str) -> list[str]:
    if name.endswith(".json"):
        problem = manifest_problem(content)
        return [problem] if problem else []
    if name.endswith(".css"):
        return ["样式表不能含有 “</”（只能写样式）"] if "</" in content else []
    try:
        agreement_environment(DictLoader({})).parse(content)
    except TemplateSyntaxError as error:
        return [f"第 {error.lineno} 行模板语法错误：{error.message}"]
    return []


@cache
def _template_seed() -> Mapping[str, str]:
    return {
        path.relative_to(TEMPLATES_DIR).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(TEMPLATES_DIR.rglob("*"))
        if path.is_file() and path.relative_to(TEMPLATES_DIR).parts[0] != CLAUSES
    }


def _uses_template(city: CityConfig, product: str, name: str) -> bool:
    folder = name.rpartition("/")[0]
    return folder == "shared" or folder == city.product(product).agreement_template


@cache
def _clause_seed() -> Mapping[str, str]:
    return {
        path.name.removesuffix(".html.j2"): path.read_text(encoding="utf-8")
        for path in sorted((TEMPLATES_DIR / CLAUSES).glob("*.html.j2"))
    }


def _uses_clause(city: CityConfig, product: str, name: str) -> bool:
    return name in (city.product(product).clauses or DEFAULT_CLAUSES)


def clause_path(name: str) -> str:
    """The name templates include a clause by."""
    return f"{CLAUSES}/{name}.html.j2"


# --- business calendars: one document per year -----------------------------------------------------------


@cache
def _calendar_seed() -> Mapping[str, str]:
    return {path.stem: path.read_text(encoding="utf-8") for path in sorted(CALENDARS_DIR.glob("*.json"))}


def _calendar_problems(name: str, content: str) -> list[str]:
    try:
        parse_year(content.encode("utf-8"), f"{name}.json")
    except CalendarInvalid as invalid:
        return [f"{problem.pointer}：{problem.message}" for problem in invalid.problems]
    return []


def _uses_calendar(city: CityConfig, product: str, name: str) -> bool:
    return True  # every timer may count working days


def build_kinds() -> dict[str, Kind]:
    """Every kind the publishing flow serves, by code (built by the runtime; nothing registers on import)."""
    kinds = (
        Kind("workflow", "工作流", _workflow_seed, _workflow_problems, _uses_workflow, immutable=True),
        Kind("template", "协议模板", _template_seed, lambda _r, _s, n, c: _template_problems(n, c), _uses_template),
        Kind("clause", "协议条款", _clause_seed, lambda _r, _s, n, c: _template_problems(n, c), _uses_clause),
        Kind("calendar", "工作日历", _calendar_seed, lambda _r, _s, n, c: _calendar_problems(n, c), _uses_calendar),
        Kind("bank", "存管银行", bank_seed, lambda _r, s, n, c: bank_problems(n, c), uses_bank),
        Kind("product", "业务品种", product_seed, lambda _r, s, n, c: product_problems(s, n, c), uses_product),
    )
    return {kind.code: kind for kind in kinds}
