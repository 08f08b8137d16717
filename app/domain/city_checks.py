"""Semantic checks of a resolved city config, beyond its JSON Schema: banks, workflows, parameters and
deadlines, templates and clauses, release amounts, fees and the extra form."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.domain.cities import (
    CityCatalog,
    CityConfig,
    FormSpec,
    ProductConfig,
    ReleaseRule,
    ResolvedCity,
)
from app.domain.config_keys import RELEASED_ON
from app.domain.durations import parse_duration
from app.domain.fees import fee_problem
from app.domain.forms.patterns import pattern_problem
from app.domain.money import format_yuan
from app.domain.problems import CityConfigInvalid, Problem, pointer
from app.domain.products import ProductRegistry, ProductVariant
from app.domain.validation_budget import spend
from app.platform.errors import ConfigError
from app.state_machine.definition import Parameter, WorkflowDefinition
from app.state_machine.parameters import TYPE_LABELS, bound_problem, type_problem

Workflows = Mapping[tuple[str, int], WorkflowDefinition]


@dataclass(frozen=True)
class _Scope:
    """Where problems of one product are reported."""

    resolved: ResolvedCity
    product: str

    def problem(self, path: tuple[Any, ...], zh: str, en: str) -> Problem:
        full = ("products", self.product, *path)
        return Problem(self.resolved.origin(full), pointer(*full), zh, en)


def _bank_problems(scope: _Scope, product: ProductConfig, banks: Collection[str]) -> list[Problem]:
    """Checked against the codes of the configured banks (`app.banks.registry`), which the runtime's bank
    endpoints and the bank simulator are built from."""
    return [
        scope.problem(("banks", index), f"未知银行 {code}", f"unknown bank {code!r}")
        for index, code in enumerate(product.banks)
        if code not in banks
    ]


class AgreementNames(Protocol):
    """Which agreement templates ("<folder>/v<n>") and clauses exist (`app.definitions.templates`: what the
    publishing flow serves)."""

    def has_template(self, template: str) -> bool: ...

    def has_clause(self, clause: str) -> bool: ...


@dataclass(frozen=True)
class TemplateFiles:
    """The agreement templates and clauses of a folder of files (the repository's `agreement_templates/`)."""

    folder: Path

    def has_template(self, template: str) -> bool:
        return (self.folder / template / "agreement.html.j2").is_file()

    def has_clause(self, clause: str) -> bool:
        return (self.folder / "clauses" / f"{clause}.html.j2").is_file()


Templates = Path | AgreementNames  # a folder of files, or what is served


def _agreement_problems(scope: _Scope, product: ProductConfig, templates: Templates) -> list[Problem]:
    names = TemplateFiles(templates) if isinstance(templates, Path) else templates
    problems = []
    if not names.has_template(product.agreement_template):
        problems.append(
            scope.problem(
                ("agreement", "template"),
                f"协议模板 {product.agreement_template} 不存在",
                f"unknown agreement template {product.agreement_template!r}",
            )
        )
    for index, clause in enumerate(product.clauses):
        if not names.has_clause(clause):
            problems.append(
                scope.problem(("agreement", "clauses", index), f"条款 {clause} 不存在", f"unknown clause {clause!r}")
            )
    return problems


def _parameter_problems(scope: _Scope, product: ProductConfig, workflow: WorkflowDefinition) -> list[Problem]:
    problems = []
    for group, values in (("parameters", product.parameters), ("deadlines", product.deadlines)):
        for name, value in values.items():
            at = (group, name)
            declared = workflow.parameters.get(name)
            if declared is None:
                problems.append(
                    scope.problem(
                        at,
                        f"工作流 {workflow.id} 未声明参数 {name}",
                        f"workflow {workflow.id} v{workflow.version} declares no parameter {name!r}",
                    )
                )
                continue
            if (declared.type == "duration") != (group == "deadlines"):
                home = "deadlines" if declared.type == "duration" else "parameters"
                problems.append(
                    scope.problem(at, f"参数 {name} 应写在 {home} 中", f"parameter {name!r} belongs in {home}")
                )
                continue
            problem = type_problem(declared.type, value)
            if problem is None:
                problems += _bound_problems(scope, at, declared, value)
                continue
            parsed = parse_duration(value) if declared.type == "duration" else None
            zh = f"时限 {name} 必须为正" if parsed is not None else f"参数 {name} 应为{TYPE_LABELS[declared.type]}"
            problems.append(scope.problem(at, zh, problem))
    return problems


def _bound_problems(scope: _Scope, at: tuple[str, str], declared: Parameter, value: int) -> list[Problem]:
    """A parameter outside the bounds its workflow declares, the bound named in Chinese (in yuan for amounts)."""
    problem = bound_problem(declared.minimum, declared.maximum, value)
    if problem is None:
        return []
    low = declared.minimum is not None and value < declared.minimum
    bound = declared.minimum if low else declared.maximum
    assert bound is not None
    shown = format_yuan(bound) if declared.type == "fen" else str(bound)
    return [scope.problem(at, f"参数 {at[1]}（{declared.label}）不得{'小' if low else '大'}于 {shown}", problem)]


PLAN_ACTION = "release_tranche"  # a workflow that runs release plans names it on each release event


def _runs_plans(workflow: WorkflowDefinition) -> bool:
    return any(PLAN_ACTION in transition.actions for transition in workflow.transitions)


def _plan_events(workflow: WorkflowDefinition) -> list[str]:
    """The events on which a workflow that runs release plans releases the tranches they make due."""
    events = {t.event for t in workflow.transitions if PLAN_ACTION in t.actions and t.event != "retry_payout"}
    return sorted(events)


def _release_problems(scope: _Scope, product: ProductConfig, workflow: WorkflowDefinition) -> list[Problem]:
    release = product.release
    if release is None:
        staged = any("release_stage" in t.actions for t in workflow.transitions)
        return (
            [scope.problem((), "分阶段或分期放款的业务须配置 release.tranches", "this workflow needs release.tranches")]
            if staged or _runs_plans(workflow)
            else []
        )
    problems = [
        scope.problem(("release", "conditions", index), f"放款条件 {event} 不是工作流事件", f"unknown event {event!r}")
        for index, event in enumerate(release.conditions)
        if event not in workflow.events
    ]
    problems += _tranche_event_problems(scope, release, workflow)
    shares = sum(tranche.share_bps for tranche in release.tranches if not tranche.remainder)
    remainders = sum(1 for tranche in release.tranches if tranche.remainder)
    fixed = any(tranche.amount_fen is not None for tranche in release.tranches)
    if shares > 10_000:
        problems.append(
            scope.problem(
                ("release", "tranches"),
                f"各期释放比例合计 {shares / 100:.2f}%，可能超过托管金额",
                f"tranche shares add up to {shares} bps, more than the custody amount",
            )
        )
    if remainders > 1:
        problems.append(scope.problem(("release", "tranches"), "只能有一期“余款”", "at most one remainder tranche"))
    if remainders and shares >= 10_000:
        problems.append(
            scope.problem(("release", "tranches"), "其他各期已达 100%，余款一期为零", "the remainder tranche is empty")
        )
    if not remainders and fixed:
        problems.append(
            scope.problem(
                ("release", "tranches"),
                "含固定金额的放款计划须有一期“余款”（托管金额减去其他各期）",
                "a plan with fixed amounts needs a remainder tranche",
            )
        )
    elif not remainders and shares < 10_000:
        problems.append(
            scope.problem(
                ("release", "tranches"),
                f"各期合计仅 {shares / 100:.2f}%，余款无从释放",
                f"tranches release only {shares} bps of the custody amount",
            )
        )
    return problems


def _tranche_event_problems(scope: _Scope, release: ReleaseRule, workflow: WorkflowDefinition) -> list[Problem]:
    """Each tranche's event must be one on which the workflow releases a tranche (for a workflow that does not
    run plans, an event a tranche names must be the one it releases on, `RELEASED_ON`; its conditions are
    checked against the same in `_unread_problems`)."""
    plans = _runs_plans(workflow)
    allowed = _plan_events(workflow) if plans else sorted(RELEASED_ON.get(workflow.id, ()))
    problems = []
    for index, tranche in enumerate(release.tranches):
        event = release.event_of(index)
        if event in allowed or not (plans or tranche.event):
            continue
        name = workflow.events.get(event)
        shown = f"{name}（{event}）" if name else event
        choices = "、".join(f"{workflow.events.get(e, e)}（{e}）" for e in allowed) or "无"
        at = ("release", "tranches", index, "event") if tranche.event else ("release", "conditions")
        problems.append(
            scope.problem(
                at,
                f"第 {index + 1} 期“{tranche.label}”的放款事件 {shown} 不是工作流 {workflow.id} "
                f"第 {workflow.version} 版的放款事件，可用：{choices}",
                f"workflow {workflow.id} v{workflow.version} releases no tranche on {event!r} (allowed: {allowed})",
            )
        )
    return problems


def _variant_problems(scope: _Scope, product: ProductConfig, variant: ProductVariant) -> list[Problem]:
    """A city runs a product on the workflow its declaration is built on (at that version or a later one) and
    prints an agreement of its own template folder: the base product's rules rely on that workflow's events."""
    problems = []
    if product.workflow_id != variant.workflow_id or product.workflow_version < variant.workflow_version:
        problems.append(
            scope.problem(
                ("workflow",),
                f"业务 {variant.name} 须使用工作流 {variant.workflow_id}（第 {variant.workflow_version} 版或更新）",
                f"{variant.code} runs on workflow {variant.workflow_id} v{variant.workflow_version} or later",
            )
        )
    if product.agreement_template.split("/")[0] != variant.template_folder:
        problems.append(
            scope.problem(
                ("agreement", "template"),
                f"业务 {variant.name} 的协议模板须为 {variant.template_folder} 的某一版本"
                f"（如 {variant.agreement_template}）",
                f"{variant.code} prints a {variant.template_folder} agreement",
            )
        )
    return problems


def _unread_problems(
    scope: _Scope, product: ProductConfig, workflow: WorkflowDefinition, whole_release: str | None
) -> list[Problem]:
    """Values no code would act on yet (`app.domain.config_keys`): refused, never silently ignored. A product whose
    declaration says it releases in one piece (`whole_release`, its base's reason) is refused a split plan with
    that reason."""
    problems = []
    if product.release is None or _runs_plans(workflow):
        return problems
    released_on = RELEASED_ON.get(workflow.id)
    if released_on is None or set(product.release.conditions) != released_on:
        expected = "、".join(sorted(released_on or ())) or "（本工作流无放款条件）"
        problems.append(
            scope.problem(
                ("release", "conditions"),
                f"工作流 {workflow.id} 第 {workflow.version} 版不按配置的放款条件放款：它在 {expected} 后放款"
                "（分期放款请使用支持放款计划的工作流版本）",
                f"workflow {workflow.id} releases on {sorted(released_on or ())}, whatever the conditions say",
            )
        )
    staged = any("release_stage" in transition.actions for transition in workflow.transitions)
    whole = len(product.release.tranches) == 1 and product.release.tranches[0].remainder
    if not staged and not whole:
        why = (
            f"{whole_release}：release.tranches 只能是一期余款"
            if whole_release
            else f"工作流 {workflow.id} 第 {workflow.version} 版一次全额放款，不能分期："
            "release.tranches 只能是一期余款（分期放款请使用支持放款计划的工作流版本）"
        )
        english = f"workflow {workflow.id} releases everything at once: one remainder tranche only"
        problems.append(scope.problem(("release", "tranches"), why, english))
    return problems


def _amount_problems(scope: _Scope, product: ProductConfig) -> list[Problem]:
    problems = []
    limits = product.custody
    if limits.min_fen is not None and limits.max_fen is not None and limits.min_fen > limits.max_fen:
        problems.append(scope.problem(("custody",), "托管金额下限高于上限", "custody min_fen above max_fen"))
    return problems


def _fee_problems(scope: _Scope, product: ProductConfig, workflow: WorkflowDefinition) -> list[Problem]:
    """Fees the platform cannot charge as configured (who pays, when; `app.domain.fees`)."""
    return [
        scope.problem(("fees", index), *problem)
        for index, fee in enumerate(product.fees)
        if (problem := fee_problem(fee, workflow.id)) is not None
    ]


def _form_problems(scope: _Scope, form: FormSpec | None, required: list[str]) -> list[Problem]:
    if form is None:
        return []
    problems = []
    names = {field.name for field in form.fields}
    orders: dict[tuple[str, int], str] = {}
    for field in form.fields:
        spend()
        at = ("form", "schema", "properties", field.name)
        if field.section not in form.sections:
            problems.append(
                scope.problem(
                    (*at, "x-section"), f"分组“{field.section}”未声明", f"undeclared section {field.section!r}"
                )
            )
        if (field.section, field.order) in orders:
            problems.append(
                scope.problem(
                    (*at, "x-order"),
                    f"与字段 {orders[(field.section, field.order)]} 顺序号重复",
                    f"x-order {field.order} repeated in section {field.section!r}",
                )
            )
        orders[(field.section, field.order)] = field.name
        whole = field.schema.get("type") == "integer" or field.widget == "yuan"
        for bound in ("minimum", "maximum"):
            if whole and not isinstance(field.schema.get(bound, 0), int):
                problems.append(scope.problem((*at, bound), "整数字段的上下限应为整数", f"{bound} of an integer field"))
        if "pattern" in field.schema and (why := pattern_problem(field.schema["pattern"])) is not None:
            message = "正则表达式无效或不受支持（服务器使用线性时间引擎：不支持环视、反向引用，长度不超过 512 字符）"
            problems.append(scope.problem((*at, "pattern"), message, f"invalid pattern: {why}"))
    problems.extend(
        scope.problem(("form", "schema", "required", index), f"必填字段 {name} 未定义", f"unknown field {name!r}")
        for index, name in enumerate(required)
        if name not in names
    )
    return problems


def city_problems(
    resolved: ResolvedCity,
    city: CityConfig,
    workflows: Workflows,
    templates: Templates,
    banks: Collection[str],
    products: ProductRegistry,
) -> list[Problem]:
    problems = []
    stem = resolved.source.removesuffix(".json")
    if not stem.startswith("_") and stem != city.admin_code:
        problems.append(
            Problem(
                resolved.origin(("admin_code",)),
                "/admin_code",
                f"行政区划代码 {city.admin_code} 与文件名 {resolved.source} 不符",
                f"admin_code {city.admin_code} does not match the file name",
            )
        )
    for name, product in city.products.items():
        spend()
        scope = _Scope(resolved, name)
        if name not in products:
            problems.append(
                scope.problem(
                    (), f"未知业务 {name}（已登记的业务：{products.known_text()}）", f"unknown product {name!r}"
                )
            )
            continue
        variant = products.get(name)
        problems += _variant_problems(scope, product, variant)
        problems += _bank_problems(scope, product, banks) + _agreement_problems(scope, product, templates)
        problems += _amount_problems(scope, product)
        form_spec = resolved.data["products"][name].get("form", {}).get("schema", {})
        problems += _form_problems(scope, product.form, form_spec.get("required", []))
        workflow = workflows.get((product.workflow_id, product.workflow_version))
        if workflow is None:
            problems.append(
                scope.problem(
                    ("workflow",),
                    f"工作流 {product.workflow_id} 第 {product.workflow_version} 版不存在",
                    f"unknown workflow {product.workflow_id} v{product.workflow_version}",
                )
            )
            continue
        problems += _parameter_problems(scope, product, workflow) + _release_problems(scope, product, workflow)
        problems += _unread_problems(scope, product, workflow, products.get(variant.base).whole_release)
        problems += _fee_problems(scope, product, workflow)
    spend()
    return problems


def checker(
    workflows: Workflows, templates: Templates, banks: Collection[str], products: ProductRegistry
) -> Callable[[ResolvedCity, CityConfig], list[Problem]]:
    """The checks of a city config against the workflows, the agreement templates, the bank codes and the
    products known."""
    return lambda resolved, city: city_problems(resolved, city, workflows, templates, banks, products)


def validate_file(
    path: Path, workflows: Workflows, templates: Templates, banks: Collection[str], products: ProductRegistry
) -> CityConfig:
    """Every check on the config at `path` (its parents read from the same folder); CityConfigInvalid lists all."""
    catalog = CityCatalog(path.parent, checker(workflows, templates, banks, products))
    try:
        return catalog.load(path.stem)
    except CityConfigInvalid:
        raise
    except ConfigError as error:
        raise CityConfigInvalid(path.name, [Problem(path.name, "/", "文件不存在", "no such file")]) from error
