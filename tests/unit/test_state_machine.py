"""The workflow engine and loader, with a registry of fakes (no app, no database)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.platform.errors import TransitionNotAllowed, WorkflowError
from app.state_machine.engine import Engine
from app.state_machine.loader import build_definition, load_definition
from app.state_machine.registry import Registry

WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "resale_escrow.json"


@dataclass
class Subject:
    state: str
    funded: bool = False
    log: list[str] = field(default_factory=list)


def fake_registry() -> Registry:
    registry = Registry()
    registry.guard("fully_funded")(lambda ctx: ctx.funded)
    registry.guard("has_custody_funds")(lambda ctx: ctx.funded)
    for name in (
        "sign_agreement",
        "request_virtual_account",
        "record_virtual_account",
        "release_payout_hold",
        "request_payout",
        "settle_payout",
        "record_payer_account",
        "refund_excess",
        "refund_to_origin",
    ):
        registry.action(name)(lambda ctx, name=name: ctx.log.append(name))
    return registry


def test_shipped_resale_workflow_loads_and_runs_the_happy_path() -> None:
    definition = load_definition(WORKFLOW, fake_registry())
    engine = Engine(definition, fake_registry())
    deal = Subject(definition.initial)
    engine.fire(deal, "confirm", deal)
    engine.fire(deal, "account_opened", deal)
    engine.fire(deal, "funds_arrived", deal)
    assert deal.state == "awaiting_funds", "a partial arrival keeps the deal waiting"
    deal.funded = True
    engine.fire(deal, "funds_arrived", deal)
    engine.fire(deal, "title_transferred", deal)
    fired = engine.fire(deal, "payout_succeeded", deal)
    assert (fired.source, fired.target) == ("releasing", "closed")
    assert deal.log == [
        "sign_agreement",
        "request_virtual_account",
        "record_virtual_account",
        "record_payer_account",
        "record_payer_account",
        "request_payout",
        "settle_payout",
        "refund_excess",
    ]
    assert definition.states["closed"].final


def test_event_not_allowed_in_state_is_a_typed_error_in_chinese() -> None:
    registry = fake_registry()
    engine = Engine(load_definition(WORKFLOW, registry), registry)
    deal = Subject("created")
    with pytest.raises(TransitionNotAllowed) as caught:
        engine.fire(deal, "title_transferred", deal)
    assert "待确认协议" in caught.value.message and "过户完成" in caught.value.message
    assert deal.state == "created"


def _data() -> dict:
    return json.loads(WORKFLOW.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("mutate", "pointer"),
    [
        (lambda d: d["transitions"][0].update(guard="no_such_guard"), "/transitions/0/guard"),
        (lambda d: d["transitions"][0].update(actions=["no_such_action"]), "/transitions/0/actions/0"),
        (lambda d: d["transitions"][0].update(to="nowhere"), "/transitions/0/to"),
        (lambda d: d.update(initial="nowhere"), "/initial"),
        (lambda d: d["states"].update(orphan={"label": "孤立"}), "/states/orphan"),
        (lambda d: d["transitions"][0].update(event="undeclared"), "/transitions/0/event"),
        (
            lambda d: d["transitions"].append({"from": "closed", "event": "cancel", "to": "cancelled", "label": "x"}),
            "/transitions/19/from",
        ),
        (lambda d: d.pop("states"), "/"),
    ],
)
def test_loader_rejects_broken_definitions_naming_the_pointer(mutate, pointer: str) -> None:
    data = copy.deepcopy(_data())
    mutate(data)
    with pytest.raises(WorkflowError) as caught:
        build_definition(data, fake_registry(), "resale_escrow.json")
    pointers = [problem["pointer"] for problem in caught.value.details]
    assert pointer in pointers
    assert all(problem["file"] == "resale_escrow.json" and problem["message"] for problem in caught.value.details)
