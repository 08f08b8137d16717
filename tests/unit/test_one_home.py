"""One home per capability, checked in the source: a `Payout` is constructed only by the payouts package,
a payout's hold is posted or voided only there, and a deal's custody is credited by one function."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def _calls(predicate: object) -> set[str]:
    found = set()
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and predicate(node):  # type: ignore[operator]
                found.add(str(path.relative_to(APP.parent)))
    return found


def _named(node: ast.Call, name: str) -> bool:
    func = node.func
    return (isinstance(func, ast.Name) and func.id == name) or (isinstance(func, ast.Attribute) and func.attr == name)


def test_a_payout_is_constructed_in_one_place() -> None:
    def builds_payout(node: ast.Call) -> bool:
        return isinstance(node.func, ast.Name) and node.func.id == "Payout"

    ours = {path for path in _calls(builds_payout) if not path.startswith("app/tools/banksim/")}  # the bank's own
    assert ours == {"app/payouts/lifecycle.py"}


def test_holds_are_posted_and_voided_in_one_place_outside_the_ledger() -> None:
    def resolves_hold(node: ast.Call) -> bool:
        return _named(node, "post_pending") or _named(node, "void_pending")

    outside = {path for path in _calls(resolves_hold) if not path.startswith("app/ledger/")}
    assert outside == {"app/payouts/holds.py"}


def test_a_deals_custody_is_credited_by_one_function() -> None:
    def arrival_posting(node: ast.Call) -> bool:
        values = [*node.args, *(keyword.value for keyword in node.keywords)]
        return _named(node, "TransferSpec") and any(
            isinstance(value, ast.Constant) and value.value == "arrival" for value in values
        )

    assert _calls(arrival_posting) == {"app/bank_inbox/custody.py"}
