"""Release plans (app/domain/release_plan.py) and the blocks that run them: amounts per tranche, never more than
custody, which tranches an event makes due; and the city checks that refuse a plan the workflow cannot run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.agreement import _share
from app.domain.cities import ReleaseRule, Tranche
from app.domain.release_plan import due_tranches, plan_error, planned, tranche_amounts, tranche_gross
from app.platform.errors import ValidationError, WorkflowError
from app.state_machine import building_blocks as blocks
from tests.unit.test_city_checks import _city, _problems, _write, folder

__all__ = ["folder"]  # the city-checks fixture, used here as it is there

PLAN_90_10 = ReleaseRule(
    ("title_transferred",),
    (
        Tranche("过户款", share_bps=9000, event="title_transferred"),
        Tranche("交割尾款", remainder=True, event="handover_done"),
    ),
)

tranches = st.lists(
    st.one_of(
        st.builds(Tranche, st.just("比例"), share_bps=st.integers(0, 10_000)),
        st.builds(Tranche, st.just("固定"), amount_fen=st.integers(0, 10**12)),
    ),
    min_size=0,
    max_size=5,
)


@given(tranches, st.booleans(), st.integers(0, 10**13))
def test_a_plan_pays_exactly_the_custody_amount_or_is_refused(parts: list, remainder: bool, custody: int) -> None:
    rule = ReleaseRule(("title_transferred",), (*parts, *([Tranche("余款", remainder=True)] if remainder else [])))
    if not rule.tranches:
        return
    if plan_error(rule, custody) is not None:
        with pytest.raises(ValidationError):
            tranche_amounts(rule, custody)
        return
    amounts = tranche_amounts(rule, custody)
    assert sum(amounts) == custody and all(amount >= 0 for amount in amounts)
    assert all(tranche_gross(rule, custody, k) == amounts[k] for k in range(len(amounts)))


def test_the_remainder_absorbs_the_rounding_and_a_plan_above_custody_is_refused() -> None:
    assert tranche_amounts(PLAN_90_10, 123_456_789) == (111_111_110, 12_345_679)
    thirds = ReleaseRule(
        ("x",), (Tranche("a", share_bps=3333), Tranche("b", share_bps=3333), Tranche("c", share_bps=3334))
    )
    assert tranche_amounts(thirds, 100) == (33, 33, 34), "an all-shares plan: the last tranche absorbs"
    fixed = ReleaseRule(("x",), (Tranche("定金", amount_fen=50_000), Tranche("余款", remainder=True)))
    assert tranche_amounts(fixed, 80_000) == (50_000, 30_000)
    refused = plan_error(fixed, 40_000, "deposit_amount")
    assert refused is not None and refused.code == "RELEASE_PLAN_ABOVE_CUSTODY"
    assert refused.details == {"deposit_amount": refused.message} and "超过托管金额 ¥400.00" in refused.message


def test_a_tranche_is_due_on_its_event_once_the_conditions_happened() -> None:
    assert due_tranches(PLAN_90_10, 0, ["title_transferred"]) == range(0, 1)
    assert due_tranches(PLAN_90_10, 0, ["handover_done"]) == range(0, 0), "the first tranche waits for its event"
    assert due_tranches(PLAN_90_10, 0, ["handover_done", "title_transferred"]) == range(0, 2)
    assert due_tranches(PLAN_90_10, 1, ["title_transferred", "handover_done"]) == range(1, 2)
    gated = ReleaseRule(("gov_approved",), PLAN_90_10.tranches)
    assert due_tranches(gated, 0, ["title_transferred"]) == range(0, 0), "a condition not yet met"
    lines = planned(PLAN_90_10, 1_000_00, {"handover_done": "物业交割"})
    assert [(t.label, t.event_label, t.amount_fen, t.share_bps) for t in lines] == [
        ("过户款", "title_transferred", 90_000, 9000),
        ("交割尾款", "物业交割", 10_000, None),
    ]
    assert (_share(9000), _share(3333), _share(1250)) == ("90%", "33.33%", "12.5%")


def _case(event: str, **facts: Any) -> blocks.CaseContext:
    case = {"custody_fen": 1_000_00, "custody_amount_fen": 1_000_00, **facts}
    return blocks.CaseContext({}, case, PLAN_90_10, event=event)


def test_the_blocks_release_each_tranche_on_its_event_to_the_seller() -> None:
    early = _case("handover_done")
    assert not blocks.tranche_due(early)
    blocks.record_release_event(early)
    assert early.case["release_events"] == ["handover_done"]
    with pytest.raises(WorkflowError):
        blocks.release_tranche(_case("handover_done"))
    first = _case("title_transferred")
    assert blocks.tranche_due(first) and not blocks.last_tranche(first)
    blocks.release_tranche(first)
    assert [(i.kind, i.amount_fen, i.payee) for i in first.instructions] == [("payout", 90_000, "seller")]
    assert not blocks.last_tranche(first)
    blocks.settle_tranche(first)
    assert first.case["tranches_released"] == 1 and "tranches_in_flight" not in first.case
    rest = _case("handover_done", custody_fen=5_00, tranches_released=1, release_events=["title_transferred"])
    blocks.release_tranche(rest)
    assert [i.amount_fen for i in rest.instructions] == [5_00], "never more than is free in custody"
    assert blocks.last_tranche(rest)


def test_a_tranche_on_an_event_the_workflow_does_not_release_on_is_refused_in_chinese(folder: Path) -> None:
    plan = {
        "conditions": ["title_transferred"],
        "tranches": [
            {"label": "过户款", "share_bps": 9000, "event": "title_transferred"},
            {"label": "尾款", "remainder": True, "event": "buyer_withdrew"},
        ],
    }
    _write(folder, "999901", _city(resale_escrow={"release": plan}))
    problems = _problems(folder, "999901")
    assert [(p.pointer, p.message) for p in problems] == [
        (
            "/products/resale_escrow/release/tranches/1/event",
            "第 2 期“尾款”的放款事件 买方放弃购买（buyer_withdrew） 不是工作流 resale_escrow 第 2 版的放款事件，"
            "可用：物业交割（handover_done）、过户完成（title_transferred）",
        )
    ]
    fixed = {"conditions": ["title_transferred"], "tranches": [{"label": "定金", "amount_fen": 100}]}
    _write(folder, "999901", _city(resale_escrow={"release": fixed}))
    assert ["须有一期“余款”" in p.message for p in _problems(folder, "999901")] == [True]
