"""An arrival's timeline line: what arrived against what was due, and what becomes of money beyond it."""

from __future__ import annotations

from app.deals.arrival_text import ArrivalLine, arrival_line, excess_fate
from app.platform.bootstrap import WORKFLOWS_DIR, build_registry
from app.state_machine.loader import load_definition


def test_a_top_up_that_overshoots_names_the_balance_the_due_and_the_excess() -> None:
    detail = {"amount_fen": 1_300_00, "held_fen": 2_000_00, "due_fen": 1_500_00}
    assert arrival_line("资金足额到账", detail, "放款时原路退回") == ArrivalLine(
        "资金到账", "到账 ¥1,300.00，存管余额 ¥2,000.00（应有 ¥1,500.00，多出 ¥500.00 放款时原路退回）"
    )
    exact = {"amount_fen": 1_500_00, "held_fen": 1_500_00, "due_fen": 1_500_00}
    assert arrival_line("资金足额到账", exact, "-") == ArrivalLine("资金足额到账", "到账 ¥1,500.00")
    assert arrival_line("部分资金到账", {"amount_fen": 5_00}, "-") is None, "older rows keep label and amount"


def test_the_excess_goes_back_on_release_only_where_the_workflow_sends_it_back() -> None:
    registry = build_registry()
    resale = load_definition(WORKFLOWS_DIR / "resale_escrow.json", registry)
    provident = load_definition(WORKFLOWS_DIR / "provident_fund_rent.json", registry)
    assert excess_fate(resale) == "放款时原路退回"
    assert excess_fate(provident) == "留在存管账户"
