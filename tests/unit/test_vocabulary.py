"""The workflow vocabulary is built by one function at start-up and lives on the Runtime: no module under app/
registers a guard or an action on import, or writes into a registry's dicts; each name means one thing."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import app
from app.deals.vocabulary import build_vocabulary
from app.platform.bootstrap import WORKFLOWS_DIR, build_registry
from app.state_machine.registry import Registry

APP = Path(app.__file__).resolve().parent
BUILDER = APP / "deals" / "vocabulary.py"  # the one place that adds names to a registry
REGISTRY = APP / "state_machine" / "registry.py"  # the one that writes its dicts: Registry.guard/action
REGISTRY_DICTS = frozenset({"guards", "actions", "money"})
WRITING_METHODS = frozenset({"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"})


def _sources() -> list[Path]:
    return sorted(APP.rglob("*.py"))


def _into_registry_dict(node: ast.AST) -> bool:
    """`x.guards[...]` / `x.actions[...]` as a target."""
    return (
        isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr in REGISTRY_DICTS
    )


def _registering_call(node: ast.AST) -> bool:
    """`x.guard(name)` / `x.action(name)`: the registry's way to add a name."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("guard", "action")


def _writes(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        if any(_into_registry_dict(part) for target in targets for part in ast.walk(target)):
            lines.append(node.lineno)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in WRITING_METHODS
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr in REGISTRY_DICTS
        ):
            lines.append(node.lineno)
    return lines


def test_no_module_writes_into_a_registrys_dicts() -> None:
    found = {
        str(path.relative_to(APP)): lines
        for path in _sources()
        if path != REGISTRY and (lines := _writes(ast.parse(path.read_text())))
    }
    assert found == {}, "guards and actions are added only by build_vocabulary, through Registry.guard/action"


def test_only_the_vocabulary_builder_registers_and_only_when_called() -> None:
    found: dict[str, list[int]] = {}
    for path in _sources():
        tree = ast.parse(path.read_text())
        decorators = [
            d.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            for d in node.decorator_list
            if _registering_call(d)
        ]
        calls = [node.lineno for node in ast.walk(tree) if _registering_call(node)] if path != BUILDER else []
        if decorators or calls:
            found[str(path.relative_to(APP))] = decorators + calls
    assert found == {}
    builder = ast.parse(BUILDER.read_text())
    at_import = [node.lineno for statement in builder.body for node in ast.walk(statement) if _registering_call(node)]
    at_import = [line for line in at_import if not _inside_function(builder, line)]
    assert at_import == [], "the builder registers when called, not when imported"


def _inside_function(tree: ast.Module, line: int) -> bool:
    return any(
        isinstance(node, ast.FunctionDef) and node.lineno <= line <= (node.end_lineno or node.lineno)
        for node in tree.body
    )


def _app_modules() -> list[ModuleType]:
    names = [info.name for info in pkgutil.walk_packages([str(APP)], "app.") if not info.name.endswith("__main__")]
    return [importlib.import_module(name) for name in names]


def test_importing_every_module_leaves_no_registry_behind() -> None:
    """No module holds a registry of its own (the old global one filled by imports); a new one starts empty."""
    _app_modules()
    held = [
        f"{name}.{attribute}"
        for name, module in list(sys.modules.items())
        if name == "app" or name.startswith("app.")
        for attribute, value in vars(module).items()
        if isinstance(value, Registry)
    ]
    assert held == []
    fresh = Registry()
    assert fresh.guards == {} and fresh.actions == {}


def test_each_build_is_a_new_registry_with_the_same_names() -> None:
    first, second = build_registry(), build_registry()
    assert first is not second and first.actions is not second.actions
    assert set(first.guards) == set(second.guards) and set(first.actions) == set(second.actions)


def test_every_name_of_the_vocabulary_is_used_by_a_shipped_workflow() -> None:
    """The vocabulary is what the workflows compose: a name no workflow uses is a second name for something."""
    guards, actions = set(), set()
    for path in WORKFLOWS_DIR.glob("*.json"):
        for transition in json.loads(path.read_text(encoding="utf-8"))["transitions"]:
            if "guard" in transition:
                guards.add(transition["guard"].removeprefix("!"))
            actions.update(transition.get("actions", []))
    registry = build_registry()
    assert set(registry.guards) == guards
    assert set(registry.actions) == actions


def test_sign_agreement_signs_with_the_signer_the_vocabulary_was_built_with() -> None:
    signed: list[Any] = []
    added: list[Any] = []
    deal, rt = (
        SimpleNamespace(id=7, bank_code="ceb"),
        SimpleNamespace(clock=lambda: datetime(2026, 12, 1, tzinfo=UTC), party_signing=False),
    )

    def signer(runtime: Any, the_deal: Any) -> str:
        signed.append((runtime, the_deal))
        return "agreement"

    context = SimpleNamespace(rt=rt, deal=deal, session=SimpleNamespace(add=added.append, flush=lambda: None))
    build_vocabulary(signer).actions["sign_agreement"](context)
    assert signed == [(rt, deal)] and added[0] == "agreement"
    (job,) = added[1:]
    assert (job.kind, job.payload) == ("agreement_countersign", {"deal_id": 7}), "then the bank is asked to sign"
    assert job.bank_code == "ceb", "the job names the bank it calls (its slot at the worker)"
