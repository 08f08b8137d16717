"""The in-memory batch planner: per-operation results, linked chains, holds, hot accounts."""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain.ledger import TransferSpec
from app.domain.ledger_batch import AccountState, LedgerOp, StoredTransfer, can_buffer, plan_batch

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _accounts() -> dict[str, AccountState]:
    clearing = AccountState(1, "bank_clearing:ceb", "asset", False, True, True, 50_00, debits_posted=1_000_00)
    custody = AccountState(2, "custody:D1", "liability", True, False, False, None, credits_posted=1_000_00)
    seller = AccountState(3, "payable:D1", "liability", True, False, False, None)
    fees = AccountState(4, "fee_income", "income", False, False, True, None)
    return {a.code: a for a in (clearing, custody, seller, fees)}


def _post(transfer_id: str, debit: str, credit: str, amount: int, code: str = "release", **kw: bool) -> LedgerOp:
    return LedgerOp.post(TransferSpec(transfer_id, debit, credit, amount, code), T0, **kw)


def test_release_and_fee_linked_succeed_together() -> None:
    accounts = _accounts()
    plan = plan_batch(
        [
            _post("release:D1", "custody:D1", "payable:D1", 990_00, linked=True),
            _post("fee:D1", "custody:D1", "fee_income", 10_00, code="fee"),
        ],
        accounts,
        {},
        {},
    )
    assert [r.status for r in plan.results] == ["created", "created"]
    assert accounts["custody:D1"].debits_posted == 1_000_00 and accounts["payable:D1"].credits_posted == 990_00
    assert [row["id"] for row in plan.rows] == ["release:D1", "fee:D1"]


def test_a_failing_link_fails_the_whole_chain_and_nothing_else() -> None:
    accounts = _accounts()
    plan = plan_batch(
        [
            _post("release:D1", "custody:D1", "payable:D1", 995_00, linked=True),
            _post("fee:D1", "custody:D1", "fee_income", 10_00, code="fee"),  # 1,005 > 1,000: refused
            _post("other", "custody:D1", "payable:D1", 1_00),
        ],
        accounts,
        {},
        {},
    )
    assert [r.status for r in plan.results] == ["LINKED_OP_FAILED", "BALANCE_CONSTRAINT", "created"]
    assert plan.results[0].details == {"failed": "fee:D1"}
    assert [row["id"] for row in plan.rows] == ["other"]
    assert accounts["custody:D1"].debits_posted == 1_00 and accounts["payable:D1"].credits_posted == 1_00
    assert plan.refused_on == {2}


def test_a_chain_left_open_at_the_end_of_the_batch_is_refused() -> None:
    plan = plan_batch([_post("a", "custody:D1", "payable:D1", 1_00, linked=True)], _accounts(), {}, {})
    assert plan.results[0].status == "LINKED_CHAIN_OPEN" and plan.rows == []


def test_repeats_inside_one_batch_are_idempotent_or_conflicts() -> None:
    accounts = _accounts()
    plan = plan_batch(
        [
            _post("r1", "custody:D1", "payable:D1", 5_00),
            _post("r1", "custody:D1", "payable:D1", 5_00),
            _post("r1", "custody:D1", "payable:D1", 6_00),
        ],
        accounts,
        {},
        {},
    )
    assert [r.status for r in plan.results] == ["created", "exists", "TRANSFER_ID_CONFLICT"]
    assert accounts["payable:D1"].credits_posted == 5_00 and len(plan.rows) == 1


def test_hold_then_post_in_one_batch_and_no_second_resolution() -> None:
    accounts = _accounts()
    hold = LedgerOp.hold(TransferSpec("payout:P1", "custody:D1", "bank_clearing:ceb", 400_00, "payout"), T0)
    plan = plan_batch(
        [
            hold,
            LedgerOp.resolve("post_pending", "payout:P1:posted", "payout:P1", T0, 300_00),
            LedgerOp.resolve("void_pending", "payout:P1:void", "payout:P1", T0),
        ],
        accounts,
        {},
        {},
    )
    assert [r.status for r in plan.results] == ["created", "created", "PENDING_ALREADY_RESOLVED"]
    clearing = accounts["bank_clearing:ceb"]
    assert (clearing.credits_posted, clearing.credits_pending) == (300_00, 0)
    assert accounts["custody:D1"].debits_posted == 300_00


def test_resolving_a_stored_hold_and_its_guards() -> None:
    accounts = _accounts()
    stored = {"h": StoredTransfer("h", "pending", 2, 1, 100_00, "payout", None, None)}
    accounts["custody:D1"].debits_pending = accounts["bank_clearing:ceb"].credits_pending = 100_00
    too_much = LedgerOp.resolve("post_pending", "h:posted", "h", T0, 100_01)
    plan = plan_batch([too_much], accounts, stored, {})
    assert plan.results[0].status == "BAD_AMOUNT"
    plan = plan_batch([LedgerOp.resolve("void_pending", "h:void", "h", T0)], accounts, stored, {"h": "h:earlier"})
    assert plan.results[0].status == "PENDING_ALREADY_RESOLVED" and plan.results[0].details["by"] == "h:earlier"
    plan = plan_batch([LedgerOp.resolve("void_pending", "x:void", "x", T0)], accounts, stored, {})
    assert plan.results[0].status == "PENDING_NOT_FOUND"


def test_buffered_hot_account_collects_deltas_and_skips_the_row_check() -> None:
    accounts = _accounts()
    clearing = accounts["bank_clearing:ceb"]
    assert can_buffer(clearing, "debit", "single") and not can_buffer(clearing, "credit", "single")
    assert not can_buffer(clearing, "debit", "pending") and not can_buffer(accounts["custody:D1"], "credit", "single")
    clearing.set_totals((0, 0, 0, 0))
    clearing.buffered = True
    plan = plan_batch([_post("arrival:1", "bank_clearing:ceb", "custody:D1", 7_00, code="arrival")], accounts, {}, {})
    assert plan.results[0].ok and clearing.totals() == (7_00, 0, 0, 0)


def test_unknown_account_and_projected_balance() -> None:
    accounts = _accounts()
    plan = plan_batch([_post("x", "custody:D1", "nowhere", 1_00)], accounts, {}, {})
    assert plan.results[0].status == "UNKNOWN_ACCOUNT" and plan.results[0].details == {"account": "nowhere"}
    clearing = accounts["bank_clearing:ceb"]
    clearing.credits_posted, clearing.credits_pending = 200_00, 300_00
    assert clearing.projected_fen() == 500_00
