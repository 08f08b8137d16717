"""Issue 15, case 4 and the event half of case 3, through HTTP: a funded resale deal that fails (cancelled,
its contract terminated, the buyer withdrew) is refunded by original route after a second person's approval
and ends in a final state; a rent deposit settled as a refund alone finishes the lease."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.audit_models import AuditEntry
from app.db.models import Payout
from app.deals import service as deals
from app.deals.timers import fire_due_timers
from app.domain import ledger
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import (
    CUSTODY_FEN,
    RENT_PARTIES,
    actor,
    arrive,
    bank_accepted,
    confirmed_deal,
    load_deal,
    notification,
    open_account,
    post_callback,
    post_confirmed,
)

ACCOUNT = "6226000000000777"
PAYER_ACCOUNT = "6226620012345678"  # the account `arrive` pays from


def _payouts(rt: Runtime, deal_id: int) -> list[Payout]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(Payout).where(Payout.deal_id == deal_id).order_by(Payout.id)))


def _bank_answers(client: FlaskClient, keys_dir: Path, payout: Payout, status: str) -> None:
    """The worker sends the payout, the bank accepts it, then answers."""
    bank_accepted(client.application.extensions["cunguan.runtime"], payout.payout_id)
    body = notification(
        "payout_result",
        payout_id=payout.payout_id,
        bank_reference=f"B-{payout.payout_id}-{status}",
        status=status,
        failure_reason="收款账户状态异常" if status == "failed" else None,
    )
    code, answer = post_callback(client, keys_dir, body)
    assert code == 200, answer


def _custody(rt: Runtime, deal_no: str) -> int:
    with rt.db.uow() as uow:
        return LedgerRepository(uow.session).balance(ledger.deal_custody(deal_no).code)


def _act(ops: FlaskClient, deal_id: int, event: str, reason: str, **inputs: str) -> None:
    token = csrf_token(ops.get(f"/deals/{deal_id}").text)
    answer = post_confirmed(ops, f"/deals/{deal_id}/actions/{event}", {"csrf_token": token, "reason": reason, **inputs})
    assert answer.status_code == 302


def _approve(approver: FlaskClient, deal_id: int, payout_id: str) -> None:
    token = csrf_token(approver.get(f"/deals/{deal_id}").text)
    assert post_confirmed(approver, f"/payouts/{payout_id}/approve", {"csrf_token": token}).status_code == 302


def _funded_resale(client: FlaskClient, rt: Runtime, keys_dir: Path) -> int:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    arrive(client, keys_dir, ACCOUNT, CUSTODY_FEN, "REF-REFUND-1")
    assert load_deal(rt, deal_id).state == "funded"
    return deal_id


@pytest.mark.parametrize(
    ("event", "label"),
    [
        ("cancel", "交易取消，存管资金原路退回"),
        ("terminate", "买卖合同解除，存管资金原路退回"),
        ("buyer_withdrew", "买方放弃购买，存管资金原路退回"),
    ],
)
def test_a_funded_resale_deal_that_fails_is_refunded_by_original_route_and_ends(
    client: FlaskClient,
    rt: Runtime,
    keys_dir: Path,
    users: dict[str, int],
    login: Callable[[str], FlaskClient],
    event: str,
    label: str,
) -> None:
    deal_id = _funded_resale(client, rt, keys_dir)
    ops = login("ops")
    assert deals.MANUAL_ACTIONS[event].label in ops.get(f"/deals/{deal_id}").text, "the page offers the action"
    promise = ops.get(f"/deals/{deal_id}/agreement.html").text  # the signed agreement promises what follows
    assert "交易取消、房屋买卖合同解除或者终止、甲方放弃购买" in promise and "原路退回至甲方付款账户" in promise
    _act(ops, deal_id, event, "买卖双方解约，申请退款")
    deal = load_deal(rt, deal_id)
    assert deal.state == "refunding" and deal.events[-1].detail["label"] == label
    (refund,) = _payouts(rt, deal_id)
    assert (refund.purpose, refund.amount_fen, refund.payee_account) == ("refund", CUSTODY_FEN, PAYER_ACCOUNT)
    assert refund.status == "awaiting_approval", "北京: every refund needs a second person (city config)"

    _approve(ops, deal_id, refund.payout_id)  # who asked cannot approve
    assert _payouts(rt, deal_id)[0].status == "awaiting_approval"
    _approve(login("finance"), deal_id, refund.payout_id)
    assert _payouts(rt, deal_id)[0].status == "pending"
    _bank_answers(client, keys_dir, refund, "succeeded")

    deal = load_deal(rt, deal_id)
    assert deal.state == "refunded" and rt.workflow("resale_escrow", 1).states[deal.state].final
    assert _custody(rt, deal.deal_no) == 0
    with rt.db.uow() as uow:
        audited = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == f"deal.{event}")).one()
        assert audited.after == {"state": "refunding"} and "买卖双方解约" in str(audited.detail)
        assert check_ledger(uow.session).ok


def test_a_failed_refund_is_retried_and_a_partly_funded_deal_is_cancelled_with_its_money_back(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict[str, int], login: Callable[[str], FlaskClient]
) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    arrive(client, keys_dir, ACCOUNT, 100_000, "REF-PART-1")
    assert load_deal(rt, deal_id).state == "awaiting_funds"
    _act(login("ops"), deal_id, "cancel", "买方未能筹足房款")
    (refund,) = _payouts(rt, deal_id)
    assert (load_deal(rt, deal_id).state, refund.amount_fen, refund.payee_account) == (
        "refunding",
        100_000,
        PAYER_ACCOUNT,
    )
    _approve(login("finance"), deal_id, refund.payout_id)
    _bank_answers(client, keys_dir, refund, "failed")
    assert load_deal(rt, deal_id).state == "refund_failed"
    assert _custody(rt, load_deal(rt, deal_id).deal_no) == 100_000, "a failed refund leaves the money in custody"

    _act(login("ops"), deal_id, "retry_refund", "买方账户已恢复")
    retried = _payouts(rt, deal_id)[-1]
    assert (retried.purpose, retried.amount_fen, retried.payee_account) == ("refund", 100_000, PAYER_ACCOUNT)
    _approve(login("finance"), deal_id, retried.payout_id)
    _bank_answers(client, keys_dir, retried, "succeeded")
    deal = load_deal(rt, deal_id)
    assert deal.state == "refunded" and _custody(rt, deal.deal_no) == 0


def test_a_signed_resale_deal_without_money_is_simply_cancelled(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict[str, int], login: Callable[[str], FlaskClient]
) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    _act(login("ops"), deal_id, "cancel", "买方放弃交易")
    assert load_deal(rt, deal_id).state == "cancelled" and _payouts(rt, deal_id) == []


RENT_FORM = {
    **RENT_PARTIES,
    "monthly_rent_fen": "3000",
    "lease_months": "2",
    "months_per_installment": "1",
    "deposit_fen": "3000",
}


def test_a_rent_deposit_returned_in_full_finishes_the_lease(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict[str, int], login: Callable[[str], FlaskClient]
) -> None:
    """Case 3's event half: the settlement is a refund alone (nothing kept, no rent left); it is answered as
    the settlement the lease waits for, and the lease closes instead of waiting for ever."""
    now = [datetime(2026, 11, 23, 2, 0, tzinfo=UTC)]
    rt.clock = lambda: now[0]
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "rent_custody", RENT_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    arrive(client, keys_dir, ACCOUNT, 600_000, "R-MOVE-IN")  # the first month's rent and the deposit
    now[0] += timedelta(days=1)
    assert fire_due_timers(rt) == 1
    _bank_answers(client, keys_dir, _payouts(rt, deal_id)[0], "succeeded")
    assert load_deal(rt, deal_id).state == "rent_paid"

    ops = login("ops")
    _act(ops, deal_id, "terminate", "租客提前退租")
    assert load_deal(rt, deal_id).state == "deposit_settlement"
    _act(ops, deal_id, "move_out_confirmed", "验房无损坏，押金全退", deduction="0")
    _month, deposit = _payouts(rt, deal_id)
    assert (deposit.purpose, deposit.amount_fen, deposit.payee_account) == ("refund", 300_000, PAYER_ACCOUNT)
    assert load_deal(rt, deal_id).state == "deposit_releasing"
    _bank_answers(client, keys_dir, deposit, "succeeded")
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed", [e.detail for e in deal.events[-2:]]
    assert deal.events[-1].detail["label"] == "押金结算完成"
    assert _custody(rt, deal.deal_no) == 0
