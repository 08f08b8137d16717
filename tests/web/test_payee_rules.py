"""Issue 15 cases 1, 2 and 3 (payee half) through HTTP: money leaves a deal only to the account the signed
agreement names, back to where it came from (capped per origin), or to an account a second person approved;
a release never exceeds the agreed amount."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.audit_models import AuditEntry
from app.db.models import Deal, Payout
from app.deals import service as deals
from app.deals.timers import fire_due_timers
from app.deals.workflow import DealContext
from app.payouts import lifecycle, payees
from app.payouts.payees import PayeeRefused
from app.payouts.status import PayoutPurpose
from app.platform.config import BankEndpoint
from app.platform.runtime import Runtime
from app.queue.worker import run_worker
from tests.conftest import csrf_token
from tests.factories import (
    CUSTODY_FEN,
    INTENT_FORM,
    RESALE_FORM,
    actor,
    arrive,
    bank_accepted,
    load_deal,
    notification,
    open_account,
    post_callback,
    post_confirmed,
)
from tests.integration.simulator_support import bank_over_http
from tests.integration.test_products_in_services import RENT_FORM

Login = Callable[[str], FlaskClient]
DEVELOPER_ACCOUNT = INTENT_FORM["developer_bank_account"]
TYPED_ACCOUNT = "6222999988887777666"  # an account somebody types into a form
BUYER_ACCOUNT = "6217000010002000"
RESALE_SELLER_ACCOUNT = "6222020200112233445"
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _payouts(rt: Runtime, deal_id: int) -> list[Payout]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(Payout).where(Payout.deal_id == deal_id).order_by(Payout.id)))


def _pay(client: FlaskClient, keys_dir: Path, payout: Payout, bank: str) -> None:
    bank_accepted(client.application.extensions["cunguan.runtime"], payout.payout_id)
    body = notification(
        "payout_result",
        payout_id=payout.payout_id,
        status="succeeded",
        bank_reference=f"B-{payout.payout_id}",
        failure_reason=None,
    )
    assert post_callback(client, keys_dir, body, bank=bank)[0] == 200


def _arrival(
    client: FlaskClient, keys_dir: Path, bank: str, account_no: str, amount_fen: int, ref: str, payer: str
) -> None:
    body = notification(
        "funds_arrived",
        bank_reference=ref,
        account_no=account_no,
        amount_fen=amount_fen,
        payer_name="张三",
        payer_account=payer,
        arrived_at="2026-11-23T08:00:00Z",
    )
    assert post_callback(client, keys_dir, body, bank=bank)[0] == 200


def _violations(rt: Runtime) -> list[Any]:
    with rt.db.uow() as uow:
        s = uow.session
        return (
            payees.payee_violations(s)
            + payees.over_refunded_origins(s)
            + payees.releases_over_agreement(s, rt.products)
        )


def _held_intent_deposit(rt: Runtime, client: FlaskClient, keys_dir: Path, paid: list[int]) -> int:
    """上海's intent deposit of 50,000 yuan, signed and funded with `paid` (fen) from the buyer's account."""
    rt.banks["pab"] = BankEndpoint("pab", "平安银行", "http://127.0.0.1:9")
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "310000", "intent_deposit", {**INTENT_FORM, "deposit_amount": "50000"})
    deals.confirm_agreement(rt, agent, deal_id)
    account = load_deal(rt, deal_id).virtual_account
    assert account is not None
    opened = notification("account_opened", request_id=account.request_id, account_no="15000000000001")
    assert post_callback(client, keys_dir, {**opened, "account_name": "存管"}, bank="pab")[0] == 200
    for number, amount in enumerate(paid):
        _arrival(client, keys_dir, "pab", "15000000000001", amount, f"I-{number}", BUYER_ACCOUNT)
    assert load_deal(rt, deal_id).state == "held"
    return deal_id


def test_case1_intent_deposit_pays_only_the_developer_the_agreement_names_whatever_is_typed(
    rt: Runtime, client: FlaskClient, keys_dir: Path, login: Login
) -> None:
    deal_id = _held_intent_deposit(rt, client, keys_dir, [5_000_000])
    agreement = load_deal(rt, deal_id).agreement
    assert agreement is not None
    masked = "*" * (len(DEVELOPER_ACCOUNT) - 4) + DEVELOPER_ACCOUNT[-4:]
    assert masked in agreement.html and DEVELOPER_ACCOUNT not in agreement.html, "named, masked as templates mask"
    ops = login("ops")
    page = ops.get(f"/deals/{deal_id}").text
    assert 'name="payee_account" required' not in page.split('id="propose-amendment-form"')[0], "no typed payee"
    answer = post_confirmed(
        ops,
        f"/deals/{deal_id}/actions/purchase_signed",
        data={
            "csrf_token": csrf_token(page),
            "reason": "已签购房合同",
            "payee_name": "某某",
            "payee_account": TYPED_ACCOUNT,
        },
    )
    assert answer.status_code == 302
    (release,) = _payouts(rt, deal_id)
    assert (release.payee_account, release.amount_fen) == (DEVELOPER_ACCOUNT, 5_000_000)
    assert load_deal(rt, deal_id).seller_bank_account == DEVELOPER_ACCOUNT, "the typed account changed nothing"
    with rt.db.uow() as uow:
        entry = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "deal.purchase_signed")).one()
        assert TYPED_ACCOUNT not in str(entry.detail)
    assert _violations(rt) == []


def test_case1_a_guarantee_claim_pays_the_beneficiary_the_agreement_names(
    rt: Runtime, client: FlaskClient, keys_dir: Path, login: Login, tmp_path: Path
) -> None:
    rt.banks["boc"] = BankEndpoint("boc", "中国银行", "http://127.0.0.1:9")
    agent = actor(rt, "agent")
    form = {
        "applicant_kind": "个人",
        "applicant_name": "张三",
        "applicant_id_number": "11010519491231002X",
        "applicant_phone": "13912345678",
        "beneficiary_name": "青岛示例建设有限公司",
        "beneficiary_bank_account": "6222600260001072444",
        "freeze_amount": "50000",
        "freeze_from": "2026-11-23",
    }
    deal_id = deals.create_deal(rt, agent, "370200", "guarantee_release", form)
    with bank_over_http(rt, keys_dir, tmp_path, bank_code="boc"):  # the bank freezes and signs its receipt
        deals.confirm_agreement(rt, agent, deal_id)
        run_worker(rt, should_stop=lambda: False, burst=True)
    ops = login("ops")
    token = csrf_token(ops.get(f"/deals/{deal_id}").text)
    post_confirmed(
        ops,
        f"/deals/{deal_id}/actions/claim_made",
        data={"csrf_token": token, "reason": "担保权人主张", "payee_name": "某某", "payee_account": TYPED_ACCOUNT},
    )
    (claim,) = _payouts(rt, deal_id)
    assert (claim.payee_account, claim.amount_fen) == ("6222600260001072444", 5_000_000)


def test_case1_an_intent_deposit_form_without_the_developer_account_is_refused(rt: Runtime, users: dict) -> None:
    form = {name: value for name, value in INTENT_FORM.items() if name != "developer_bank_account"}
    with pytest.raises(Exception) as refused:
        deals.create_deal(rt, actor(rt, "agent"), "310000", "intent_deposit", form)
    assert "developer_bank_account" in str(getattr(refused.value, "details", {}))


def test_case2_an_overpaid_intent_deposit_releases_the_agreed_amount_and_returns_the_rest(
    rt: Runtime, client: FlaskClient, keys_dir: Path, login: Login
) -> None:
    deal_id = _held_intent_deposit(rt, client, keys_dir, [7_000_000])
    ops = login("ops")
    token = csrf_token(ops.get(f"/deals/{deal_id}").text)
    post_confirmed(ops, f"/deals/{deal_id}/actions/purchase_signed", {"csrf_token": token, "reason": "已签购房合同"})
    release, excess = _payouts(rt, deal_id)
    assert (release.purpose, release.amount_fen, release.payee_account) == ("release", 5_000_000, DEVELOPER_ACCOUNT)
    assert (excess.purpose, excess.amount_fen, excess.payee_account) == ("refund", 2_000_000, BUYER_ACCOUNT)
    assert release.release_group == excess.release_group
    _pay(client, keys_dir, release, "pab")
    _pay(client, keys_dir, excess, "pab")
    assert load_deal(rt, deal_id).state == "closed"
    assert _violations(rt) == []


def test_case3_a_rent_deposit_paid_from_a_goes_back_to_a_not_to_the_latest_payer(
    rt: Runtime, client: FlaskClient, keys_dir: Path, login: Login
) -> None:
    now = [T0]
    rt.clock = lambda: now[0]
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "rent_custody", RENT_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000001")
    payer_a, payer_b = "6217000000000000001", "6217000000000000002"
    _arrival(client, keys_dir, "ceb", "6226000000000001", 600_000, "R-1", payer_a)  # rent and the deposit
    now[0] += timedelta(days=1)
    fire_due_timers(rt)
    _pay(client, keys_dir, _payouts(rt, deal_id)[-1], "ceb")
    now[0] += timedelta(days=31)
    fire_due_timers(rt)
    _arrival(client, keys_dir, "ceb", "6226000000000001", 300_000, "R-2", payer_b)  # the second month's rent
    now[0] += timedelta(days=1)
    fire_due_timers(rt)
    _pay(client, keys_dir, _payouts(rt, deal_id)[-1], "ceb")
    assert load_deal(rt, deal_id).state == "deposit_settlement"
    ops = login("ops")
    token = csrf_token(ops.get(f"/deals/{deal_id}").text)
    post_confirmed(
        ops,
        f"/deals/{deal_id}/actions/move_out_confirmed",
        data={"csrf_token": token, "reason": "退租验房完成", "deduction": "0"},
    )
    (refund,) = _payouts(rt, deal_id)[2:]
    assert (refund.purpose, refund.amount_fen, refund.payee_account) == ("refund", 300_000, payer_a)
    assert _violations(rt) == []


def _funded_resale(rt: Runtime, client: FlaskClient, keys_dir: Path) -> int:
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", RESALE_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000555")
    arrive(client, keys_dir, "6226000000000555", CUSTODY_FEN, "REF-A")
    return deal_id


def test_an_amendment_needs_a_second_person_and_then_the_release_goes_to_it(
    rt: Runtime, client: FlaskClient, keys_dir: Path, login: Login
) -> None:
    deal_id = _funded_resale(rt, client, keys_dir)
    ops = login("ops")
    token = csrf_token(ops.get(f"/deals/{deal_id}").text)
    proposal = {"csrf_token": token, "payee_name": "李四", "payee_account": TYPED_ACCOUNT, "reason": "卖方更换收款卡"}
    proposal["payee_account_again"] = TYPED_ACCOUNT
    assert ops.post(f"/deals/{deal_id}/payee-amendments", data=proposal).status_code == 302
    page = ops.get(f"/deals/{deal_id}").text
    assert "收款账户变更待审批" in page and "approve-amendment-" not in page, "the proposer sees no approve button"
    with rt.db.uow() as uow:
        amendment_id = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "payee_amendment.propose"))
        (proposed,) = list(amendment_id)
        assert proposed.actor == "user:ops" and proposed.after["account"] == f"**** {TYPED_ACCOUNT[-4:]}"
        number = proposed.detail["amendment_id"]
    refused = ops.post(
        f"/payee-amendments/{number}/approve", data={"csrf_token": token}, headers={"Accept": "application/json"}
    )
    assert refused.status_code == 403
    assert refused.get_json() == {"code": "AMENDMENT_SELF_APPROVAL", "message": refused.get_json()["message"]}
    assert "不能审批自己提出" in refused.get_json()["message"]
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    (first,) = _payouts(rt, deal_id)
    assert first.payee_account == RESALE_SELLER_ACCOUNT, "not approved yet: the agreement's account"
    finance = login("finance")
    answer = finance.post(
        f"/payee-amendments/{number}/approve", data={"csrf_token": csrf_token(finance.get(f"/deals/{deal_id}").text)}
    )
    assert answer.status_code == 302
    with rt.db.uow() as uow:
        approved = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "payee_amendment.approve")).one()
        assert approved.actor == "user:finance" and approved.detail["proposed_by"] == "user:ops"
        assert approved.before == {"account": f"**** {RESALE_SELLER_ACCOUNT[-4:]}"}
    bank_accepted(rt, first.payout_id)
    failed = notification(
        "payout_result", payout_id=first.payout_id, bank_reference="B-F", status="failed", failure_reason="账户已销户"
    )
    assert post_callback(client, keys_dir, failed)[0] == 200
    deals.manual_action(rt, actor(rt, "ops"), deal_id, "retry_payout", "按审批后的账户重新付款")
    retried = _payouts(rt, deal_id)[-1]
    assert (retried.payee_account, retried.amount_fen) == (TYPED_ACCOUNT, CUSTODY_FEN)
    assert _violations(rt) == []


def test_an_agent_cannot_approve_and_an_auditor_cannot_propose(
    rt: Runtime, client: FlaskClient, keys_dir: Path, login: Login
) -> None:
    deal_id = _funded_resale(rt, client, keys_dir)
    auditor = login("auditor")
    token = csrf_token(auditor.get(f"/deals/{deal_id}").text)
    proposal = {"csrf_token": token, "payee_name": "李四", "payee_account": TYPED_ACCOUNT, "reason": "x"}
    proposal["payee_account_again"] = TYPED_ACCOUNT
    assert auditor.post(f"/deals/{deal_id}/payee-amendments", data=proposal).status_code == 403
    assert auditor.post(f"/deals/{deal_id}/payee-amendments", data={}).status_code in (400, 403), "CSRF or role"
    agent = login("agent")
    token = csrf_token(agent.get(f"/deals/{deal_id}").text)
    assert agent.post(f"/deals/{deal_id}/payee-amendments", data={**proposal, "csrf_token": token}).status_code == 302
    assert agent.post("/payee-amendments/1/approve", data={"csrf_token": token}).status_code == 403
    assert ops_admin_lists_it(login)


def ops_admin_lists_it(login: Login) -> bool:
    page = login("finance").get("/admin/payee-amendments/")
    return page.status_code == 200 and f"**** {TYPED_ACCOUNT[-4:]}" in page.text and TYPED_ACCOUNT not in page.text


@pytest.mark.parametrize(
    ("purpose", "account", "amount", "code"),
    [
        (PayoutPurpose.RELEASE, TYPED_ACCOUNT, 1_000, "PAYEE_NOT_IN_AGREEMENT"),
        (PayoutPurpose.RELEASE, RESALE_SELLER_ACCOUNT, CUSTODY_FEN + 1, "AMOUNT_ABOVE_AGREEMENT"),
        (PayoutPurpose.REFUND, TYPED_ACCOUNT, 1_000, "PAYEE_NOT_ORIGIN"),
        (PayoutPurpose.REFUND, "6226620012345678", CUSTODY_FEN + 6, "REFUND_ABOVE_ORIGIN"),
    ],
)
def test_the_lifecycle_refuses_what_the_rules_do_not_allow(
    rt: Runtime,
    client: FlaskClient,
    keys_dir: Path,
    users: dict,
    purpose: PayoutPurpose,
    account: str,
    amount: int,
    code: str,
) -> None:
    deal_id = _funded_resale(rt, client, keys_dir)
    arrive(client, keys_dir, "6226000000000555", 5, "REF-B")  # a little more, so a too-large order is not short
    with rt.db.uow() as uow, pytest.raises(PayeeRefused) as refused:
        deal = uow.session.get_one(Deal, deal_id)
        ctx = DealContext(rt, uow.session, deal, "user:ops")
        lifecycle.open_deal_payout(ctx, lifecycle.PayoutOrder(amount, "某某", account, purpose))
    assert refused.value.code == code and refused.value.http_status == 409
    assert _payouts(rt, deal_id) == [], "nothing was created"


def test_the_invariants_find_payouts_that_break_the_rules(
    rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict
) -> None:
    deal_id = _funded_resale(rt, client, keys_dir)
    assert _violations(rt) == []
    with rt.db.uow() as uow:
        for number, (purpose, account, amount) in enumerate(
            [
                ("release", TYPED_ACCOUNT, 10),
                ("refund", "6226620012345678", CUSTODY_FEN + 1),
                ("release", RESALE_SELLER_ACCOUNT, CUSTODY_FEN),
            ]
        ):
            uow.session.add(
                Payout(
                    payout_id=f"BAD-{number}",
                    deal_id=deal_id,
                    bank_code="ceb",
                    amount_fen=amount,
                    payee_name="某某",
                    payee_account=account,
                    purpose=purpose,
                    status="submitted",
                )
            )
        uow.commit()
    with rt.db.uow() as uow:
        assert [v.rule for v in payees.payee_violations(uow.session)] == ["PAYEE_NOT_IN_AGREEMENT"]
        assert [(v.rule, v.amount_fen) for v in payees.over_refunded_origins(uow.session)] == [
            ("REFUND_ABOVE_ORIGIN", 1)
        ]
        assert [(v.rule, v.amount_fen) for v in payees.releases_over_agreement(uow.session, rt.products)] == [
            ("AMOUNT_ABOVE_AGREEMENT", 10)
        ]
