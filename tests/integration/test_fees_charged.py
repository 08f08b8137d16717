"""Fees charged as the city configures them, end to end through the services (issue 17, fees): a seller-paid
0.3 % fee (at least ¥500) comes off the release, moves to fee income in the batch that posts the paid payout and
never twice, even when the first payout failed; the agreement prints it in figures and 大写. A buyer-paid fee on
arrival is due on top of the custody amount; when the deal is cancelled it goes back with the refund (or stays,
when the config says `keep`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.ledger_models import LedgerTransfer
from app.db.models import Payout
from app.deals import service as deals
from app.ledger.repo import LedgerRepository, check_ledger
from app.payouts import holds
from app.payouts.status import PayoutPurpose
from app.platform.runtime import Runtime
from tests.factories import (
    CUSTODY_FEN,
    RESALE_FORM,
    actor,
    arrive,
    bank_accepted,
    load_deal,
    notification,
    open_account,
    patch_city,
    post_callback,
)
from tests.integration.test_agreement_deal import html_text
from tests.integration.test_payouts_home import _newest_payout

ACCOUNT = "6226000000000888"
# one config for both tests (the signed agreement's PDF is then laid out once per test process)
FEES = [
    {"name": "存管服务费", "payer": "seller", "kind": "rate", "bps": 30, "min_fen": 50_000},
    {"name": "开户费", "payer": "buyer", "kind": "fixed", "amount_fen": 20_000, "charge_on": "arrival"},
]
FEE_FEN = 370_370  # 0.3 % of ¥1,234,567.89 = 3,703.7037 → ¥3,703.70 (above the ¥500 minimum)
ARRIVAL_FEN = 20_000


def _resale_deal(rt: Runtime, client: FlaskClient, keys_dir: Path) -> tuple[int, str]:
    """A resale deal of 北京 with both fees, confirmed, its account open; and its agreement's text."""
    patch_city(rt, "110000", {"products": {"resale_escrow": {"fees": FEES}}})
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", RESALE_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    return deal_id, html_text(deals.agreement_html(rt, agent, deal_id))


def _result(client: FlaskClient, keys_dir: Path, payout_id: str, status: str) -> None:
    bank_accepted(client.application.extensions["cunguan.runtime"], payout_id)
    reason = "账户状态异常" if status == "failed" else None
    body = notification(
        "payout_result", payout_id=payout_id, status=status, bank_reference=f"B-{payout_id}", failure_reason=reason
    )
    answer = post_callback(client, keys_dir, body)
    assert answer[0] == 200, answer


def _fee_transfers(rt: Runtime, deal_id: int) -> dict[str, int]:
    with rt.db.uow() as uow:
        rows = uow.session.scalars(select(LedgerTransfer).where(LedgerTransfer.deal_id == deal_id))
        return {t.id: t.amount_fen for t in rows if t.id.startswith("fee:")}


def test_a_seller_fee_comes_off_the_release_once_even_after_a_failed_payout(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict[str, int]
) -> None:
    deal_id, text = _resale_deal(rt, client, keys_dir)
    assert (
        "存管服务费：由卖方承担，按存管金额的0.30%计收，最低¥500.00，金额¥3,703.70（大写：叁仟柒佰零叁元柒角整）"
        in text
    )
    assert "不向甲方、乙方收取任何存管服务费用" not in text

    arrive(client, keys_dir, ACCOUNT, CUSTODY_FEN + ARRIVAL_FEN, "F-1")
    ops = actor(rt, "ops")
    deals.record_title_transferred(rt, ops, deal_id)
    first = _newest_payout(rt, PayoutPurpose.RELEASE)
    assert (first.amount_fen, first.fees) == (CUSTODY_FEN - FEE_FEN, {"0": FEE_FEN})
    _result(client, keys_dir, first.payout_id, "failed")
    assert load_deal(rt, deal_id).state == "payout_failed"
    deal_no = load_deal(rt, deal_id).deal_no
    assert _fee_transfers(rt, deal_id) == {f"fee:{deal_no}:arrival:1": ARRIVAL_FEN}, "a failed release charges nothing"

    deals.manual_action(rt, ops, deal_id, "retry_payout", "卖方账户已恢复")
    second = _newest_payout(rt, PayoutPurpose.RELEASE)
    assert second.payout_id != first.payout_id and second.amount_fen == CUSTODY_FEN - FEE_FEN
    _result(client, keys_dir, second.payout_id, "succeeded")
    assert load_deal(rt, deal_id).state == "closed"
    with rt.db.uow() as uow:  # after the workflow's `settle_payout` repeat, one more: nothing is charged again
        holds.settle(uow.session, uow.session.get(Payout, second.id), rt.clock())
        uow.commit()

    assert _fee_transfers(rt, deal_id) == {
        f"fee:{deal_no}:arrival:1": ARRIVAL_FEN,
        f"fee:{second.payout_id}:0": FEE_FEN,
    }
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert repo.balance("fee_income") == FEE_FEN + ARRIVAL_FEN
        assert repo.balance(f"custody:{deal_no}") == 0 and repo.totals(f"custody:{deal_no}")[2] == 0
        paid = uow.session.get(LedgerTransfer, f"payout:{second.payout_id}:posted")
        assert paid is not None and paid.amount_fen == CUSTODY_FEN - FEE_FEN, "the seller got custody − fee"
        assert check_ledger(uow.session).ok
    fees = deals.deal_payload(deals.deal_view(rt, ops, deal_id))["fees"]
    assert [(f["name"], f["charged_fen"], f["status"]) for f in fees] == [
        ("存管服务费", FEE_FEN, "已收取"),
        ("开户费", ARRIVAL_FEN, "已收取"),
    ]


def test_a_buyer_fee_on_arrival_is_paid_on_top_and_goes_back_when_the_deal_is_cancelled(
    client: FlaskClient, rt: Runtime, keys_dir: Path, login: Callable[[str], FlaskClient]
) -> None:
    deal_id, text = _resale_deal(rt, client, keys_dir)
    assert "开户费：由买方承担，固定收取¥200.00，金额¥200.00（大写：贰佰元整）" in text
    assert "甲方应存入存管账户的资金合计（存管资金加存入时收取的费用）：¥1,234,767.89" in text

    arrive(client, keys_dir, ACCOUNT, CUSTODY_FEN, "A-1")
    assert load_deal(rt, deal_id).state == "awaiting_funds", "the custody amount alone does not cover the fee"
    assert _fee_transfers(rt, deal_id) == {}
    arrive(client, keys_dir, ACCOUNT, ARRIVAL_FEN, "A-2")
    deal = load_deal(rt, deal_id)
    assert deal.state == "funded"
    assert _fee_transfers(rt, deal_id) == {f"fee:{deal.deal_no}:arrival:1": ARRIVAL_FEN}

    ops = actor(rt, "ops")
    deals.manual_action(rt, ops, deal_id, "cancel", "买卖双方协商取消")  # on_failure: refund (the default)
    with rt.db.uow() as uow:
        refunds = list(uow.session.scalars(select(Payout).where(Payout.deal_id == deal_id)))
    assert all(p.purpose == "refund" and not p.fees for p in refunds)
    assert sum(p.amount_fen for p in refunds) == CUSTODY_FEN + ARRIVAL_FEN, "everything the buyer paid goes back"
    for payout in refunds:
        _result(client, keys_dir, payout.payout_id, "succeeded")
    assert load_deal(rt, deal_id).state == "refunded"
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert repo.balance("fee_income") == 0, "the release fee was never charged, the arrival fee went back"
        assert repo.balance(f"custody:{deal.deal_no}") == 0 and check_ledger(uow.session).ok
    fees = deals.deal_payload(deals.deal_view(rt, ops, deal_id))["fees"]
    assert [(f["name"], f["charged_fen"], f["status"]) for f in fees] == [
        ("存管服务费", 0, "未收取"),
        ("开户费", 0, "已退还"),
    ]
    ops_client = login("ops")
    for url in (f"/deals/{deal_id}", f"/admin/deals/{deal_id}"):  # the deal page and the console's detail
        page = html_text(ops_client.get(url).text)
        assert "开户费买方固定收取¥200.00资金存入时¥200.00¥0.00已退还" in page, url
        assert "应存入合计（存管金额加存入时收取的费用）：¥1,234,767.89" in page, url
