"""Load a workflow definition: JSON Schema first, then references and parameters, then the IR and
its static graph checks. Any problem is a load error (WorkflowError listing them all)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators

from app.domain.problems import Problem, pointer
from app.platform.errors import WorkflowError
from app.state_machine.definition import Parameter, State, Timer, Transition, WorkflowDefinition
from app.state_machine.money_checks import money_problems
from app.state_machine.parameters import bound_problem, type_problem
from app.state_machine.registry import Registry
from app.state_machine.static_checks import static_problems

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "workflow.schema.json"


@cache
def _schema_validator() -> Draft202012Validator:
    # JSON Schema counts 5.0 as an integer; versions and parameter defaults must be true integers.
    strict_types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = validators.extend(Draft202012Validator, type_checker=strict_types)
    return strict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _schema_problems(data: Any, source: str) -> list[Problem]:
    return [
        Problem(source, pointer(*error.absolute_path), "不符合工作流结构定义", error.message)
        for error in _schema_validator().iter_errors(data)
    ]


def _default_problem(spec: dict[str, Any]) -> str | None:
    default = spec["default"]
    return type_problem(spec["type"], default) or bound_problem(spec.get("minimum"), spec.get("maximum"), default)


def _parameter_problems(data: dict[str, Any], source: str) -> list[Problem]:
    return [
        Problem(source, pointer("parameters", name, "default"), "参数默认值类型不符或超出上下限", problem)
        for name, spec in data.get("parameters", {}).items()
        if (problem := _default_problem(spec)) is not None
    ]


def _timer_problems(data: dict[str, Any], source: str) -> list[Problem]:
    parameters, events = data.get("parameters", {}), data["events"]
    problems = []
    for name, spec in data["states"].items():
        triggers = {item["event"] for item in data["transitions"] if item["from"] == name}
        for index, timer in enumerate(spec.get("timers", [])):
            at = ("states", name, "timers", index)
            if spec.get("final"):
                problems.append(Problem(source, pointer(*at), "终态不能设定时器", "a final state cannot have timers"))
            if parameters.get(timer["after"], {}).get("type") != "duration":
                problems.append(
                    Problem(
                        source,
                        pointer(*at, "after"),
                        "定时器须引用已声明的时长参数",
                        f"{timer['after']!r} is not a declared duration parameter",
                    )
                )
            if timer["event"] not in events:
                problems.append(
                    Problem(source, pointer(*at, "event"), "事件未声明", f"undeclared event {timer['event']!r}")
                )
            elif timer["event"] not in triggers:
                problems.append(
                    Problem(
                        source,
                        pointer(*at, "event"),
                        "定时器事件在该状态没有对应的转换",
                        f"no transition from {name!r} on timer event {timer['event']!r}",
                    )
                )
    return problems


def _reference_problems(data: dict[str, Any], registry: Registry, source: str) -> list[Problem]:
    states, events = data["states"], data["events"]
    problems = []
    if data["initial"] not in states:
        problems.append(Problem(source, "/initial", "初始状态不存在", f"unknown initial state {data['initial']!r}"))
    for index, item in enumerate(data["transitions"]):
        at = ("transitions", index)
        for key in ("from", "to"):
            if item[key] not in states:
                problems.append(Problem(source, pointer(*at, key), "状态不存在", f"unknown state {item[key]!r}"))
        if item["event"] not in events:
            problems.append(Problem(source, pointer(*at, "event"), "事件未声明", f"undeclared event {item['event']!r}"))
        if "guard" in item and item["guard"].removeprefix("!") not in registry.guards:
            problems.append(
                Problem(source, pointer(*at, "guard"), "条件函数不存在", f"unknown guard {item['guard']!r}")
            )
        for position, action in enumerate(item.get("actions", [])):
            if action not in registry.actions:
                problems.append(
                    Problem(source, pointer(*at, "actions", position), "动作不存在", f"unknown action {action!r}")
                )
    return problems + _parameter_problems(data, source) + _timer_problems(data, source)


def _build(data: dict[str, Any]) -> WorkflowDefinition:
    return WorkflowDefinition(
        id=data["id"],
        version=data["version"],
        name=data["name"],
        initial=data["initial"],
        states={
            name: State(
                name,
                spec["label"],
                spec.get("final", False),
                tuple(Timer(timer["after"], timer["event"]) for timer in spec.get("timers", [])),
            )
            for name, spec in data["states"].items()
        },
        transitions=tuple(
            Transition(t["from"], t["event"], t["to"], t["label"], t.get("guard"), tuple(t.get("actions", [])))
            for t in data["transitions"]
        ),
        events=dict(data["events"].items()),
        parameters={
            name: Parameter(
                name, spec["type"], spec["label"], spec["default"], spec.get("minimum"), spec.get("maximum")
            )
            for name, spec in data.get("parameters", {}).items()
        },
    )


def build_definition(data: Any, registry: Registry, source: str = "<memory>") -> WorkflowDefinition:
    problems = _schema_problems(data, source)
    if not problems:
        problems = _reference_problems(data, registry, source)
    if not problems:
        definition = _build(data)
        problems = static_problems(definition, source) + money_problems(definition, registry.money, source)
    if problems:
        raise WorkflowError(
            f"工作流定义 {source} 有 {len(problems)} 处错误",
            code="WORKFLOW_INVALID",
            details=[problem.to_dict() for problem in problems],
        )
    return definition


def load_definition(path: Path, registry: Registry) -> WorkflowDefinition:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WorkflowError(
            f"工作流文件 {path.name} 不是合法的 JSON",
            code="WORKFLOW_INVALID",
            details=[Problem(path.name, "/", "JSON 语法错误", str(error)).to_dict()],
        ) from error
    return build_definition(data, registry, path.name)
