"""An arrival's timeline line: what arrived against what was due, and what becomes of money beyond it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from app.deals.arrival_text import ArrivalLine, arrival_line, excess_clause_labels, excess_fate
from app.platform.bootstrap import WORKFLOWS_DIR, build_registry
from app.state_machine.loader import load_definition


def test_a_top_up_that_overshoots_names_the_balance_the_due_and_the_excess() -> None:
    detail = {"amount_fen": 1_300_00, "held_fen": 2_000_00, "due_fen": 1_500_00}
    assert arrival_line("资金足额到账", detail, "结清时原路退回") == ArrivalLine(
        "资金到账", "到账 ¥1,300.00，存管余额 ¥2,000.00（应有 ¥1,500.00，多出 ¥500.00 结清时原路退回）"
    )
    exact = {"amount_fen": 1_500_00, "held_fen": 1_500_00, "due_fen": 1_500_00}
    assert arrival_line("资金足额到账", exact, "-") == ArrivalLine("资金足额到账", "到账 ¥1,500.00")
    assert arrival_line("部分资金到账", {"amount_fen": 5_00}, "-") is None, "older rows keep label and amount"


def test_the_excess_goes_back_on_settlement_only_where_the_workflow_sends_it_back() -> None:
    registry = build_registry()
    resale = load_definition(WORKFLOWS_DIR / "resale_escrow.json", registry)
    provident_v1 = load_definition(WORKFLOWS_DIR / "provident_fund_rent.json", registry)
    provident_v2 = load_definition(WORKFLOWS_DIR / "provident_fund_rent_v2.json", registry)
    assert excess_fate(resale) == "结清时原路退回"
    assert excess_fate(provident_v1) == "留在存管账户", "v1 closed a lease with an overpayment still in custody"
    assert excess_fate(provident_v2) == "结清时原路退回"


def test_the_closing_row_claims_an_overpayment_refund_only_when_one_was_made() -> None:
    resale = load_definition(WORKFLOWS_DIR / "resale_escrow.json", build_registry())
    at = datetime(2026, 12, 1, 8, tzinfo=UTC)
    label = "放款成功，存管结清；多付款项原路退回"
    row = {"from_state": "releasing", "event": "payout_succeeded", "to_state": "closed", "created_at": at}
    closing = SimpleNamespace(id=7, detail={"label": label}, **row)
    assert excess_clause_labels(resale, [closing], []) == {7: "放款成功，存管结清"}
    assert excess_clause_labels(resale, [closing], [at - timedelta(days=3)]) == {7: "放款成功，存管结清"}
    assert excess_clause_labels(resale, [closing], [at]) == {}, "a refund made with the closing: the clause stays"
