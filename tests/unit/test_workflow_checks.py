"""Static checks and timers of workflows, and the building-block guards and actions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.deals import vocabulary
from app.domain.cities import ReleaseRule, Tranche
from app.domain.durations import parse_duration
from app.domain.rent import plan_rent
from app.platform.bootstrap import WORKFLOWS_DIR, build_registry
from app.platform.errors import WorkflowError
from app.state_machine import building_blocks as blocks
from app.state_machine.building_blocks import CaseContext
from app.state_machine.engine import Engine
from app.state_machine.graph import to_dot
from app.state_machine.loader import build_definition, load_definition
from app.state_machine.parameters import resolve
from app.state_machine.registry import Registry

registry = build_registry()  # the platform's vocabulary, built for these tests


def _base() -> dict:
    return {
        "id": "tiny",
        "version": 1,
        "name": "小流程",
        "initial": "a",
        "parameters": {"wait": {"type": "duration", "label": "等待", "default": "P1D"}},
        "states": {
            "a": {"label": "甲", "timers": [{"after": "wait", "event": "tick"}]},
            "b": {"label": "乙"},
            "done": {"label": "完成", "final": True},
        },
        "events": {"go": "前进", "tick": "到时"},
        "transitions": [
            {"from": "a", "event": "go", "to": "b", "label": "走", "guard": "fully_funded"},
            {"from": "a", "event": "go", "to": "a", "label": "等", "guard": "!fully_funded"},
            {"from": "a", "event": "tick", "to": "b", "label": "到时前进"},
            {"from": "b", "event": "go", "to": "done", "label": "完成"},
        ],
    }


def _pointers(data: dict) -> list[str]:
    with pytest.raises(WorkflowError) as caught:
        build_definition(data, registry, "tiny.json")
    assert all(p["file"] == "tiny.json" and p["message"] and p["message_en"] for p in caught.value.details)
    return [problem["pointer"] for problem in caught.value.details]


def test_the_base_fixture_is_valid() -> None:
    assert build_definition(_base(), registry).states["a"].timers[0].event == "tick"


def test_state_without_a_way_to_a_final_state() -> None:
    data = _base()
    data["states"]["trap"] = {"label": "陷阱"}
    data["transitions"].append({"from": "b", "event": "tick", "to": "trap", "label": "入坑"})
    assert _pointers(data) == ["/states/trap"]


def test_unreachable_state() -> None:
    data = _base()
    data["states"]["island"] = {"label": "孤岛"}
    data["transitions"].append({"from": "island", "event": "go", "to": "done", "label": "离岛"})
    assert _pointers(data) == ["/states/island"]


def test_transition_out_of_a_final_state() -> None:
    data = _base()
    data["transitions"].append({"from": "done", "event": "go", "to": "b", "label": "复活"})
    assert "/transitions/4/from" in _pointers(data)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (None, None),
        ("fully_funded", None),
        ("fully_funded", "fully_funded"),
        ("fully_funded", "last_stage"),
    ],
)
def test_duplicate_state_event_needs_mutually_exclusive_guards(first: str | None, second: str | None) -> None:
    data = _base()
    for index, guard in ((0, first), (1, second)):
        data["transitions"][index].pop("guard")
        if guard:
            data["transitions"][index]["guard"] = guard
    assert _pointers(data) == ["/transitions/1"]


@pytest.mark.parametrize(
    ("mutate", "pointer"),
    [
        (lambda d: d["states"]["a"]["timers"][0].update(after="nope"), "/states/a/timers/0/after"),
        (lambda d: d["parameters"]["wait"].update(type="integer"), "/states/a/timers/0/after"),
        (lambda d: d["states"]["a"]["timers"][0].update(event="go_nowhere"), "/states/a/timers/0/event"),
        (lambda d: d["states"]["b"].update(timers=[{"after": "wait", "event": "tick"}]), "/states/b/timers/0/event"),
        (lambda d: d["parameters"]["wait"].update(default="P0D"), "/parameters/wait/default"),
        (lambda d: d["parameters"]["wait"].update(default=1.0), "/parameters/wait/default"),
        (lambda d: d["transitions"][0].update(guard="!no_such_guard"), "/transitions/0/guard"),
        (
            lambda d: d["parameters"].update(months={"type": "integer", "label": "月数", "default": -1, "minimum": 0}),
            "/parameters/months/default",
        ),
    ],
)
def test_timer_parameter_and_guard_references_are_load_errors(mutate, pointer: str) -> None:
    data = _base()
    mutate(data)
    assert pointer in _pointers(data)


def test_timer_fires_after_the_city_duration() -> None:
    definition = build_definition(_base(), registry)
    engine = Engine(definition, registry)
    values = resolve(definition.parameters, {"wait": "PT2H"})
    start = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    subject = CaseContext({}, {"custody_fen": 0, "custody_amount_fen": 1})
    subject.state = "a"  # type: ignore[attr-defined] - any object with a state is a subject
    assert engine.fire_due_timer(subject, start, datetime(2026, 1, 31, 10, 59, tzinfo=UTC), values, subject) is None
    fired = engine.fire_due_timer(subject, start, datetime(2026, 1, 31, 11, 0, tzinfo=UTC), values, subject)
    assert fired is not None and (fired.event, fired.target) == ("tick", "b")


def test_calendar_months_clamp_to_the_month_end() -> None:
    month = parse_duration("P1M")
    assert month is not None and month.after(datetime(2026, 1, 31)) == datetime(2026, 2, 28)
    assert parse_duration("PT") is None and parse_duration("P1Y") is None


def test_shenzhen_rule_supervises_rent_above_three_months_and_deposit_above_one() -> None:
    plan = plan_rent(500_000, 12, 1_500_000, rent_months_exempt=3, deposit_months_exempt=1)
    assert plan.custody_per_installment_fen == 9 * 500_000
    assert plan.deposit_custody_fen == 1_000_000
    assert plan.custody_per_month_fen == 375_000


# the building blocks on their own (the state-machine level); the deal services wrap them (tests/integration)
def _recorded(fact: str) -> Callable[[CaseContext], None]:
    def record(ctx: CaseContext) -> None:
        ctx.case.setdefault("service_actions", []).append(fact)

    return record


def _request_payout(ctx: CaseContext) -> None:
    ctx.emit("payout", ctx.fact("custody_amount_fen"), "seller", "存管资金放款")


def case_registry() -> Registry:
    """The vocabulary's names with the products' blocks on a CaseContext as they are (no deal here), the deal's
    own actions recorded instead of run."""
    registry = Registry()
    for name, rule in vocabulary.CASE_GUARDS.items():
        registry.guard(name)(rule)
    for name, block in vocabulary.CASE_ACTIONS.items():
        registry.action(name, block.money)(block.function)
    registry.action("request_payout", vocabulary.RELEASES)(_request_payout)
    for name in (
        "sign_agreement",
        "request_virtual_account",
        "record_virtual_account",
        "settle_payout",
        "release_payout_hold",
    ):
        registry.action(name)(_recorded(name))
    return registry


blocks_registry = case_registry()


def test_the_blocks_registry_names_what_the_platform_vocabulary_names() -> None:
    assert set(blocks_registry.guards) == set(registry.guards)
    assert set(blocks_registry.actions) == set(registry.actions)
    assert blocks_registry.money == registry.money


def _rent_case(**facts: int) -> CaseContext:
    case = {"monthly_rent_fen": 300_000, "months_per_installment": 1, "deposit_fen": 300_000, "lease_months": 2}
    return CaseContext({"rent_months_exempt": 0, "deposit_months_exempt": 0}, {**case, **facts})


def test_rent_custody_runs_two_months_then_returns_the_deposit() -> None:
    definition = load_definition(WORKFLOWS_DIR / "rent_custody.json", blocks_registry)
    engine = Engine(definition, blocks_registry)
    ctx = _rent_case(custody_fen=0)
    ctx.state = "awaiting_move_in"  # type: ignore[attr-defined] - account opening is a deal action
    blocks_registry.actions["plan_rent_custody"](ctx)
    for event, custody_fen in [("funds_arrived", 600_000), ("release_due", 600_000)]:
        ctx.case["custody_fen"] = custody_fen
        ctx.payload = {"payer_account": "6222000011112222", "amount_fen": 600_000}
        engine.fire(ctx, event, ctx)
    assert ctx.state == "rent_releasing" and ctx.instructions[-1].amount_fen == 300_000  # type: ignore[attr-defined]
    ctx.case["custody_fen"] = 300_000
    engine.fire(ctx, "payout_succeeded", ctx)
    engine.fire(ctx, "rent_period_started", ctx)
    assert ctx.state == "rent_due", "only the deposit is left in custody"  # type: ignore[attr-defined]
    ctx.case["custody_fen"] = 600_000
    for event in ("funds_arrived", "release_due", "payout_succeeded"):
        engine.fire(ctx, event, ctx)
    assert ctx.state == "deposit_settlement"  # type: ignore[attr-defined]
    ctx.case["custody_fen"] = 300_000
    ctx.case["release_room_fen"] = 300_000  # the deposit: the rent of both months was released
    ctx.payload = {"deduction_fen": 50_000}
    engine.fire(ctx, "move_out_confirmed", ctx)
    assert [(i.kind, i.amount_fen, i.payee) for i in ctx.instructions[-2:]] == [
        ("refund", 250_000, "tenant"),
        ("payout", 50_000, "landlord"),
    ]


def test_renovation_stages_come_from_the_city_and_add_up_to_the_custody_amount() -> None:
    release = ReleaseRule(
        ("stage_accepted",), (Tranche("一期", 3333), Tranche("二期", 3333), Tranche("尾款", remainder=True))
    )
    ctx = CaseContext({}, {"custody_amount_fen": 1_000_001, "custody_fen": 1_000_001}, release)
    for _ in release.tranches:
        blocks_registry.actions["release_stage"](ctx)
        blocks_registry.actions["settle_stage"](ctx)
    assert sum(i.amount_fen for i in ctx.instructions) == 1_000_001
    assert blocks_registry.guards["last_stage"](CaseContext({}, {"stages_released": 2}, release))


def test_refund_goes_back_only_to_where_the_money_came_from() -> None:
    origins = [
        {"account": "6222000011112222", "amount_fen": 30_000},
        {"account": "6222000033334444", "amount_fen": 20_000},
    ]
    ctx = CaseContext({}, {"custody_fen": 50_000, "origins": origins})
    blocks_registry.actions["refund_to_origin"](ctx)
    assert [(i.payee, i.amount_fen) for i in ctx.instructions] == [
        ("6222000011112222", 30_000),
        ("6222000033334444", 20_000),
    ]
    ctx.case["custody_fen"] = 60_000
    with pytest.raises(WorkflowError) as caught:
        blocks_registry.actions["refund_to_origin"](ctx)
    assert caught.value.code == "REFUND_ORIGIN_UNKNOWN"
    ctx.payload = {"amount_fen": 1}
    with pytest.raises(WorkflowError) as missing:
        blocks_registry.actions["record_payer_account"](ctx)
    assert missing.value.code == "ARRIVAL_ORIGIN_MISSING", "an arrival must say where it came from"


def test_graph_marks_final_states_and_timer_edges() -> None:
    dot = to_dot(load_definition(Path(WORKFLOWS_DIR / "intent_deposit.json"), blocks_registry))
    assert '"refunded" [label="已原路退回", shape=doublecircle]' in dot
    assert "style=dashed" in dot and json.dumps("意向金缴纳期限") not in dot


def test_fully_funded_means_the_money_free_in_custody_covers_the_custody_amount() -> None:
    """One name, one meaning for every product (resale, government escrow, renovation, intent deposit): the
    deal's `custody_fen` is the posted balance less the holds of payouts in flight (case_blocks.case_context)."""
    assert blocks.fully_funded(CaseContext({}, {"custody_fen": 100_000, "custody_amount_fen": 100_000}))
    assert blocks.fully_funded(CaseContext({}, {"custody_fen": 100_001, "custody_amount_fen": 100_000}))
    assert not blocks.fully_funded(CaseContext({}, {"custody_fen": 99_999, "custody_amount_fen": 100_000}))


def test_rent_left_over_beyond_the_agreement_goes_back_by_original_route() -> None:
    origins = [
        {"account": "6222000011112222", "amount_fen": 600_000},
        {"account": "6222000033334444", "amount_fen": 350_000},
    ]
    case = {"custody_fen": 350_000, "deposit_custody_fen": 300_000, "release_room_fen": 20_000, "origins": origins}
    ctx = CaseContext({}, case, payload={"deduction_fen": 10_000})
    blocks_registry.actions["release_deposit"](ctx)
    assert [(i.kind, i.payee, i.amount_fen) for i in ctx.instructions] == [
        ("refund", "tenant", 290_000),
        ("payout", "landlord", 10_000),
        ("payout", "landlord", 10_000),  # the agreement allows 20,000 more in all: the deduction and 10,000
        ("refund", "6222000033334444", 40_000),  # the rest of the 50,000 left over was paid in too much
    ]
