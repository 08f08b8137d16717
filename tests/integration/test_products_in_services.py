"""Products other than resale escrow run on real deals: the building blocks through the deal services,
money through the ledger, the bank through signed callbacks, deadlines through the timers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.models import Deal, Payout
from app.deals import service as deals
from app.deals.sample_forms import sample_form
from app.deals.timers import fire_due_timers
from app.domain import ledger
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.config import BankEndpoint
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from app.queue.worker import run_worker
from tests.factories import (
    INTENT_FORM,
    RENT_PARTIES,
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
from tests.integration.simulator_support import bank_over_http

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
TENANT_ACCOUNT = "6226620012345678"  # the account `arrive` pays from
FUND_CENTRE = "6226620012349999"  # a housing provident fund centre's account
RENT_FORM = {
    **RENT_PARTIES,
    "monthly_rent_fen": "3000",
    "lease_months": "2",
    "months_per_installment": "1",
    "deposit_fen": "3000",
}


class Clock:
    def __init__(self, rt: Runtime) -> None:
        self.now = T0
        rt.clock = lambda: self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _payouts(rt: Runtime, deal_id: int) -> list[Payout]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(Payout).where(Payout.deal_id == deal_id).order_by(Payout.id)))


def _pay_result(client: FlaskClient, keys_dir: Path, payout: Payout, status: str) -> None:
    bank_accepted(client.application.extensions["cunguan.runtime"], payout.payout_id)
    reason = "账户状态异常" if status == "failed" else None
    body = notification(
        "payout_result",
        payout_id=payout.payout_id,
        status=status,
        bank_reference=f"B-{payout.payout_id}",
        failure_reason=reason,
    )
    code, answer = post_callback(client, keys_dir, body)
    assert code == 200, answer


def _custody(rt: Runtime, deal: Deal) -> int:
    with rt.db.uow() as uow:
        return LedgerRepository(uow.session).balance(ledger.deal_custody(deal.deal_no).code)


def _ledger_ok(rt: Runtime) -> bool:
    with rt.db.uow() as uow:
        return check_ledger(uow.session).ok


def test_rent_custody_lease_runs_its_months_and_settles_the_deposit(
    rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict[str, int]
) -> None:
    clock = Clock(rt)
    agent, ops = actor(rt, "agent"), actor(rt, "ops")
    deal_id = deals.create_deal(rt, agent, "110000", "rent_custody", RENT_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000001")
    arrive(client, keys_dir, "6226000000000001", 600_000, "R-MOVE-IN")
    assert load_deal(rt, deal_id).state == "rent_held", "first month's rent and the deposit arrived"

    clock.advance(days=1)
    assert fire_due_timers(rt) == 1
    (first,) = _payouts(rt, deal_id)
    assert (first.amount_fen, first.payee_account, first.purpose) == (300_000, "6222600260001072444", "release")
    _pay_result(client, keys_dir, first, "succeeded")
    assert load_deal(rt, deal_id).state == "rent_paid"

    clock.advance(days=31)
    assert fire_due_timers(rt) == 1
    assert load_deal(rt, deal_id).state == "rent_due", "only the deposit is left: the next month is due"
    arrive(client, keys_dir, "6226000000000001", 300_000, "R-MONTH-2")
    clock.advance(days=1)
    fire_due_timers(rt)
    _pay_result(client, keys_dir, _payouts(rt, deal_id)[-1], "succeeded")
    deal = load_deal(rt, deal_id)
    assert (deal.state, deal.facts["months_released"]) == ("deposit_settlement", 2)

    deals.manual_action(rt, ops, deal_id, "move_out_confirmed", "退租验房完成", {"deduction": "500"})
    refund, deduction = _payouts(rt, deal_id)[-2:]
    assert (refund.purpose, refund.amount_fen, refund.payee_account) == ("refund", 250_000, TENANT_ACCOUNT)
    assert (deduction.purpose, deduction.amount_fen) == ("release", 50_000)
    assert refund.release_group == deduction.release_group
    _pay_result(client, keys_dir, refund, "succeeded")
    assert load_deal(rt, deal_id).state == "deposit_releasing", "the group waits for its other payout"
    _pay_result(client, keys_dir, deduction, "failed")
    assert load_deal(rt, deal_id).state == "deposit_release_failed"

    deals.manual_action(rt, ops, deal_id, "retry_payout", "房东已更正收款账户")
    retried = _payouts(rt, deal_id)[-1]
    assert (retried.amount_fen, retried.purpose) == (50_000, "release"), "only the failed payout is sent again"
    assert retried.release_group != deduction.release_group
    _pay_result(client, keys_dir, retried, "succeeded")
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed" and _custody(rt, deal) == 0
    assert _ledger_ok(rt)


def test_intent_deposit_expires_and_goes_back_by_the_original_route(
    rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict[str, int]
) -> None:
    clock = Clock(rt)
    rt.banks["pab"] = BankEndpoint("pab", "平安银行", "http://127.0.0.1:9")  # 上海's intent deposits are at PAB
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "310000", "intent_deposit", INTENT_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    bank = load_deal(rt, deal_id).bank_code
    assert bank == "pab"
    account = load_deal(rt, deal_id).virtual_account
    assert account is not None
    opened = notification("account_opened", request_id=account.request_id, account_no="15000000000001")
    assert post_callback(client, keys_dir, {**opened, "account_name": "存管"}, bank=bank)[0] == 200
    body = notification(
        "funds_arrived",
        bank_reference="I-1",
        account_no="15000000000001",
        amount_fen=500_000,
        payer_name="张三",
        payer_account="6217000010002000",
        arrived_at="2026-11-23T08:00:00Z",
    )
    assert post_callback(client, keys_dir, body, bank=bank)[0] == 200
    assert load_deal(rt, deal_id).state == "awaiting_deposit", "5,000 of 20,000 yuan arrived"

    clock.advance(days=3)
    assert fire_due_timers(rt) == 1
    (refund,) = _payouts(rt, deal_id)
    assert (refund.purpose, refund.amount_fen, refund.payee_account) == ("refund", 500_000, "6217000010002000")
    bank_accepted(rt, refund.payout_id)
    result = notification(
        "payout_result", payout_id=refund.payout_id, status="succeeded", bank_reference="B-I-1", failure_reason=None
    )
    assert post_callback(client, keys_dir, result, bank=bank)[0] == 200
    deal = load_deal(rt, deal_id)
    assert deal.state == "refunded" and _custody(rt, deal) == 0 and "origins" not in deal.facts


def test_resale_overpayment_goes_back_to_its_payer_after_closing(
    rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict[str, int]
) -> None:
    agent, ops = actor(rt, "agent"), actor(rt, "ops")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", RESALE_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000009")
    custody = load_deal(rt, deal_id).custody_amount_fen
    arrive(client, keys_dir, "6226000000000009", custody, "S-1")
    arrive(client, keys_dir, "6226000000000009", 12_345, "S-2")
    deals.record_title_transferred(rt, ops, deal_id)
    release = _payouts(rt, deal_id)[0]
    _pay_result(client, keys_dir, release, "succeeded")
    assert load_deal(rt, deal_id).state == "closed"
    excess = _payouts(rt, deal_id)[-1]
    assert (excess.purpose, excess.amount_fen, excess.payee_account) == ("refund", 12_345, TENANT_ACCOUNT)
    _pay_result(client, keys_dir, excess, "succeeded")
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed" and _custody(rt, deal) == 0
    assert _ledger_ok(rt)


def test_a_rent_paid_for_longer_than_the_lease_is_refused_on_its_field(rt: Runtime, users: dict[str, int]) -> None:
    form = {**RENT_FORM, "lease_months": "2", "months_per_installment": "3"}
    with pytest.raises(ValidationError) as refused:
        deals.create_deal(rt, actor(rt, "agent"), "110000", "rent_custody", form)
    assert refused.value.details == {"months_per_installment": "付款周期不能长于租期"}


def test_a_deposit_settlement_with_nothing_to_pay_closes_the_lease(
    rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict[str, int]
) -> None:
    """深圳: a deposit within the exempt month is not supervised; once all rent is released, nothing is left."""
    clock = Clock(rt)
    rt.banks["pab"] = BankEndpoint("pab", "平安银行", "http://127.0.0.1:9")
    agent, ops = actor(rt, "agent"), actor(rt, "ops")
    form = {**RENT_FORM, "lease_months": "6", "months_per_installment": "6"}
    deal_id = deals.create_deal(rt, agent, "440300", "rent_custody", form)
    deal = load_deal(rt, deal_id)
    # six months paid at once: the three above the exempt three are supervised, the deposit (one month) is not
    assert (deal.custody_amount_fen, deal.facts["deposit_custody_fen"]) == (900_000, 0)
    deals.confirm_agreement(rt, agent, deal_id)
    account = load_deal(rt, deal_id).virtual_account
    assert account is not None
    opened = notification("account_opened", request_id=account.request_id, account_no="15000000000002")
    assert post_callback(client, keys_dir, {**opened, "account_name": "存管"}, bank="pab")[0] == 200
    body = notification(
        "funds_arrived",
        bank_reference="SZ-1",
        account_no="15000000000002",
        amount_fen=900_000,
        payer_name="张三",
        payer_account=TENANT_ACCOUNT,
        arrived_at="2026-11-23T08:00:00Z",
    )
    assert post_callback(client, keys_dir, body, bank="pab")[0] == 200
    for month in range(6):
        clock.advance(days=1)
        assert fire_due_timers(rt) == 1, month
        rent = _payouts(rt, deal_id)[-1]
        bank_accepted(rt, rent.payout_id)
        result = notification(
            "payout_result",
            payout_id=rent.payout_id,
            status="succeeded",
            bank_reference=f"B-SZ-{month}",
            failure_reason=None,
        )
        assert post_callback(client, keys_dir, result, bank="pab")[0] == 200
        clock.advance(days=31)
        fire_due_timers(rt)
    assert load_deal(rt, deal_id).state == "deposit_settlement"
    deals.manual_action(rt, ops, deal_id, "move_out_confirmed", "退租交接完成")
    assert load_deal(rt, deal_id).state == "deposit_releasing" and len(_payouts(rt, deal_id)) == 6
    run_worker(rt, should_stop=lambda: False, burst=True)
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed" and _custody(rt, deal) == 0


def test_a_guarantee_holds_the_frozen_money_and_a_claim_pays_the_beneficiary(
    rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict[str, int], tmp_path: Path
) -> None:
    rt.banks["boc"] = BankEndpoint("boc", "中国银行", "http://127.0.0.1:9")  # 青岛's guarantees are at BOC
    agent, ops = actor(rt, "agent"), actor(rt, "ops")
    form = {
        "applicant_kind": "个人",
        "applicant_name": "张三",
        "applicant_id_number": "11010519491231002X",
        "applicant_phone": "13912345678",
        "beneficiary_name": "李四",
        "beneficiary_bank_account": "6222600260001072444",
        "freeze_amount": "50000",
        "freeze_from": "2026-11-23",
    }
    deal_id = deals.create_deal(rt, agent, "370200", "guarantee_release", form)
    with bank_over_http(rt, keys_dir, tmp_path, bank_code="boc"):  # the bank freezes and signs its receipt
        deals.confirm_agreement(rt, agent, deal_id)
        run_worker(rt, should_stop=lambda: False, burst=True)
    deal = load_deal(rt, deal_id)
    assert (deal.state, _custody(rt, deal)) == ("frozen", 5_000_000), "the frozen money is held for the deal"
    deals.manual_action(rt, ops, deal_id, "claim_made", "担保权人书面主张")
    (claim,) = _payouts(rt, deal_id)
    assert (claim.amount_fen, claim.payee_name, claim.bank_code) == (5_000_000, "李四", "boc")
    assert claim.payee_account == "6222600260001072444", "the beneficiary's account the agreement names"
    bank_accepted(rt, claim.payout_id)
    result = notification(
        "payout_result", payout_id=claim.payout_id, status="succeeded", bank_reference="B-GR-1", failure_reason=None
    )
    assert post_callback(client, keys_dir, result, bank="boc")[0] == 200
    deal = load_deal(rt, deal_id)
    assert deal.state == "claimed" and _custody(rt, deal) == 0
    assert _ledger_ok(rt)


def test_a_provident_fund_overpayment_goes_back_to_the_fund_centre_when_the_lease_closes(
    rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict[str, int]
) -> None:
    """济南's provident-fund rent (workflow v2): the fund centre pays ¥2,800 for a one-month lease of ¥1,500. The
    month's rent goes to the landlord; the ¥1,300 beyond it goes back to the fund centre's account when the lease
    closes (v1 closed the deal with it still in custody)."""
    clock = Clock(rt)
    patch_city(rt, "370100", {"products": {"provident_fund_rent": {"banks": ["ceb"]}}})
    config = rt.cities.get("370100").product("provident_fund_rent")
    assert (config.workflow_id, config.workflow_version) == ("provident_fund_rent", 2)
    agent = actor(rt, "agent")
    form = sample_form(config, rt.products.get("provident_fund_rent"), {"lease_months": "1"})
    deal_id = deals.create_deal(rt, agent, "370100", "provident_fund_rent", form)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000903")
    body = notification(
        "funds_arrived",
        bank_reference="PF-2800",
        account_no="6226000000000903",
        amount_fen=2800_00,
        payer_name="济南住房公积金管理中心",
        payer_account=FUND_CENTRE,
        arrived_at=T0.isoformat().replace("+00:00", "Z"),
    )
    assert post_callback(client, keys_dir, body)[0] == 200
    assert load_deal(rt, deal_id).state == "rent_held"

    clock.advance(days=1)
    assert fire_due_timers(rt) == 1
    (rent,) = _payouts(rt, deal_id)
    assert (rent.purpose, rent.amount_fen) == ("release", 1500_00)
    _pay_result(client, keys_dir, rent, "succeeded")
    assert load_deal(rt, deal_id).state == "closed"
    excess = _payouts(rt, deal_id)[-1]
    assert (excess.purpose, excess.amount_fen, excess.payee_account) == ("refund", 1300_00, FUND_CENTRE)
    _pay_result(client, keys_dir, excess, "succeeded")
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed" and _custody(rt, deal) == 0
    assert _ledger_ok(rt)
