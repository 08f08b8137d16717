"""The money checks run when a workflow is loaded: a workflow in which a funded deal cannot be refunded, or a
state waits for a bank answer that will not come (or misses one that will), is refused with a clear message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.deals import vocabulary
from app.platform.bootstrap import WORKFLOWS_DIR, build_registry, load_workflows
from app.platform.errors import WorkflowError
from app.state_machine.loader import build_definition
from app.state_machine.money_checks import funded_states

registry = build_registry()


def _shipped(name: str) -> dict[str, Any]:
    return json.loads((WORKFLOWS_DIR / f"{name}.json").read_text(encoding="utf-8"))


def _without(data: dict[str, Any], source: str, event: str) -> dict[str, Any]:
    data["transitions"] = [t for t in data["transitions"] if (t["from"], t["event"]) != (source, event)]
    return data


def _problems(data: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(WorkflowError) as caught:
        build_definition(data, registry, "broken.json")
    assert caught.value.code == "WORKFLOW_INVALID"
    return caught.value.details


def test_every_shipped_workflow_passes_and_declares_its_money_moves() -> None:
    workflows = load_workflows(registry)
    assert len(workflows) == 11
    assert registry.money["refund_to_origin"].outcomes == {"refund_succeeded", "refund_failed"}
    assert registry.money["request_payout"].kind == "release"
    assert registry.money["release_deposit"] == vocabulary.MoneyEffect("refund", vocabulary.PAYOUT_OUTCOMES)
    resale = workflows[("resale_escrow", 1)]
    assert funded_states(resale, registry.money) == {"awaiting_funds", "funded", "payout_failed", "refund_failed"}
    plan = workflows[("resale_escrow", 2)]  # partly released: the rest is held, and can go back by original route
    assert funded_states(plan, registry.money) == {
        "awaiting_funds",
        "funded",
        "partly_released",
        "payout_failed",
        "refund_failed",
    }
    deadline = workflows[("resale_escrow", 3)]  # v2 with a funding deadline (城市可设「入金期限」, e.g. 3 个工作日)
    assert funded_states(deadline, registry.money) == funded_states(plan, registry.money)
    assert deadline.parameters["funding_deadline"].default == "P15D"
    expired = {(t.target, t.guard, t.actions) for t in deadline.transitions if t.event == "funding_expired"}
    assert expired == {
        ("refunding", "has_custody_funds", ("refund_to_origin",)),
        ("cancelled", "!has_custody_funds", ()),
    }
    provident = workflows[("provident_fund_rent", 2)]  # the last month sends what was paid beyond the rent back
    assert [t.actions for t in provident.transitions if t.target == "closed"] == [
        ("settle_rent_release", "refund_excess")
    ]
    gov = workflows[("gov_escrow", 2)]  # approved, or partly released: held, and can go back by original route
    assert funded_states(gov, registry.money) >= {"approved", "awaiting_approval", "partly_released"}


def test_a_funded_resale_deal_without_a_refund_is_refused() -> None:
    """The workflow before issue 15: once funded, only the release to the seller led anywhere."""
    data = _shipped("resale_escrow")
    for source, event in [("funded", "cancel"), ("funded", "terminate"), ("funded", "buyer_withdrew")]:
        _without(data, source, event)
    problems = _problems(data)
    assert [(p["pointer"], p["message"]) for p in problems] == [
        ("/states/funded", "状态「已入金」可能持有存管资金，但没有不经放款即原路退回的流转（交易失败时无法退款）")
    ]
    assert "no way to a refund by original route" in problems[0]["message_en"]


def test_a_settlement_whose_failure_nobody_waits_for_is_refused() -> None:
    """A deposit settlement that can fail, in a state that does not take the failure: the deal would wait for
    ever (the answer is only noted on the timeline)."""
    data = _without(_shipped("rent_custody"), "deposit_releasing", "payout_failed")
    settle = next(i for i, t in enumerate(data["transitions"]) if t["event"] == "move_out_confirmed")
    problems = [p for p in _problems(data) if p["pointer"] == f"/transitions/{settle}/to"]
    assert [p["message"] for p in problems] == [
        "划付可能以「划付失败」结束，但状态「押金结算划付中」不处理该事件，存管单将一直等待"
    ]


def test_waiting_for_an_answer_nothing_asked_for_is_refused() -> None:
    data = _shipped("resale_escrow")
    entering = next(t for t in data["transitions"] if (t["from"], t["event"]) == ("funded", "title_transferred"))
    entering["actions"] = []  # releasing, but no payout was asked for: payout_succeeded never comes
    problems = _problems(data)
    assert any(p["message"] == "进入「放款中」后等待「放款成功」，但该流转的动作不会产生此结果" for p in problems), (
        problems
    )


def test_ending_the_deal_before_the_refunds_answer_is_refused() -> None:
    """provident_fund_rent before issue 15: terminate refunded and went straight to the final state."""
    data = _shipped("provident_fund_rent")
    for transition in data["transitions"]:
        if (transition["from"], transition["event"], transition.get("guard")) == (
            "draw_rejected",
            "terminate",
            "has_custody_funds",
        ):
            transition["to"] = "terminated"
    problems = _problems(data)
    assert any("不能直接进入终态「已解除」" in p["message"] for p in problems), problems
