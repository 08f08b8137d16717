"""Load a workflow definition: JSON Schema first, then semantic checks, then the IR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from app.errors import WorkflowError
from app.state_machine.definition import State, Transition, WorkflowDefinition
from app.state_machine.registry import Registry

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "workflow.schema.json"


def _schema_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _problem(source: str, pointer: str, zh: str, en: str) -> dict[str, str]:
    return {"file": source, "pointer": pointer, "message": zh, "message_en": en}


def _schema_problems(data: Any, source: str) -> list[dict[str, str]]:
    return [
        _problem(source, "/" + "/".join(str(p) for p in error.absolute_path), "不符合工作流结构定义", error.message)
        for error in _schema_validator().iter_errors(data)
    ]


def _semantic_problems(data: dict[str, Any], registry: Registry, source: str) -> list[dict[str, str]]:
    states, events = data["states"], data["events"]
    problems = []
    if data["initial"] not in states:
        problems.append(_problem(source, "/initial", "初始状态不存在", f"unknown initial state {data['initial']!r}"))
    for index, item in enumerate(data["transitions"]):
        at = f"/transitions/{index}"
        for key in ("from", "to"):
            if item[key] not in states:
                problems.append(_problem(source, f"{at}/{key}", "状态不存在", f"unknown state {item[key]!r}"))
        if item["event"] not in events:
            problems.append(_problem(source, f"{at}/event", "事件未声明", f"undeclared event {item['event']!r}"))
        if item["from"] in states and states[item["from"]].get("final"):
            problems.append(_problem(source, f"{at}/from", "终态不能再流转", "transition out of a final state"))
        if "guard" in item and item["guard"] not in registry.guards:
            problems.append(_problem(source, f"{at}/guard", "条件函数不存在", f"unknown guard {item['guard']!r}"))
        for position, action in enumerate(item.get("actions", [])):
            if action not in registry.actions:
                problems.append(
                    _problem(source, f"{at}/actions/{position}", "动作不存在", f"unknown action {action!r}")
                )
    problems.extend(_unreachable(data, source))
    return problems


def _unreachable(data: dict[str, Any], source: str) -> list[dict[str, str]]:
    reached, frontier = {data["initial"]}, [data["initial"]]
    while frontier:
        state = frontier.pop()
        for item in data["transitions"]:
            if item["from"] == state and item["to"] not in reached:
                reached.add(item["to"])
                frontier.append(item["to"])
    return [
        _problem(source, f"/states/{name}", "状态不可达", f"state {name!r} is unreachable")
        for name in data["states"]
        if name not in reached
    ]


def build_definition(data: Any, registry: Registry, source: str = "<memory>") -> WorkflowDefinition:
    problems = _schema_problems(data, source)
    if not problems:
        problems = _semantic_problems(data, registry, source)
    if problems:
        raise WorkflowError(f"工作流定义 {source} 有 {len(problems)} 处错误", code="WORKFLOW_INVALID", details=problems)
    return WorkflowDefinition(
        id=data["id"],
        version=data["version"],
        name=data["name"],
        initial=data["initial"],
        states={name: State(name, spec["label"], spec.get("final", False)) for name, spec in data["states"].items()},
        transitions=tuple(
            Transition(t["from"], t["event"], t["to"], t["label"], t.get("guard"), tuple(t.get("actions", [])))
            for t in data["transitions"]
        ),
        events=dict(data["events"]),
    )


def load_definition(path: Path, registry: Registry) -> WorkflowDefinition:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise WorkflowError(
            f"工作流文件 {path.name} 不是合法的 JSON",
            code="WORKFLOW_INVALID",
            details=[_problem(path.name, "", "JSON 语法错误", str(error))],
        ) from error
    return build_definition(data, registry, path.name)
