"""Release plans on real deals (issue 17 放款计划): a resale deal in a city with a 90/10 plan releases 90 % at
过户完成 and 10 % at 物业交割 (pressed on the deal page), closes with custody 0 and a balanced ledger, and its
agreement prints the plan. (Deals on resale_escrow v1, which releases at once, are every other resale test's:
北京 pins v1.) A government-escrow deal on gov_escrow v2 releases nothing before 监管部门核准放款, then 90 % at the
approval and 10 % at 物业交割."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.models import Payout
from app.deals import service as deals
from app.deals.sample_forms import sample_form
from app.domain import ledger
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import (
    RESALE_FORM,
    actor,
    arrive,
    bank_accepted,
    load_deal,
    notification,
    open_account,
    patch_city,
    post_callback,
    post_confirmed,
)

PLAN_90_10 = {
    "conditions": ["title_transferred"],
    "tranches": [
        {"label": "过户款", "share_bps": 9000, "event": "title_transferred"},
        {"label": "交割尾款", "remainder": True, "event": "handover_done"},
    ],
}
_V2 = {"workflow": {"id": "resale_escrow", "version": 2}, "agreement": {"template": "resale_escrow/v2"}}


def _pay(client: FlaskClient, keys_dir: Path, rt: Runtime, deal_id: int) -> list[Payout]:
    """The bank pays every payout of the deal still in flight; returns the deal's payouts."""
    with rt.db.uow() as uow:
        waiting = uow.session.scalars(
            select(Payout).where(Payout.deal_id == deal_id, Payout.status.in_(("pending", "awaiting_approval")))
        ).all()
    for payout in waiting:
        bank_accepted(rt, payout.payout_id)
        result = notification(
            "payout_result",
            payout_id=payout.payout_id,
            status="succeeded",
            bank_reference=f"B-{payout.payout_id}",
            failure_reason=None,
        )
        assert post_callback(client, keys_dir, result)[0] == 200
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(Payout).where(Payout.deal_id == deal_id).order_by(Payout.id)))


def _custody(rt: Runtime, deal_no: str) -> int:
    with rt.db.uow() as uow:
        return LedgerRepository(uow.session).balance(ledger.deal_custody(deal_no).code)


def _funded(client: FlaskClient, keys_dir: Path, rt: Runtime, account_no: str) -> int:
    agent = actor(rt, "agent")
    deal_id = deals.create_deal(rt, agent, "110000", "resale_escrow", RESALE_FORM)
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, account_no)
    arrive(client, keys_dir, account_no, load_deal(rt, deal_id).custody_amount_fen, f"S-{account_no}")
    assert load_deal(rt, deal_id).state == "funded"
    return deal_id


def test_a_90_10_plan_releases_at_title_transfer_then_at_handover(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login: Callable[[str], FlaskClient]
) -> None:
    patch_city(rt, "110000", {"products": {"resale_escrow": {"release": PLAN_90_10, **_V2}}})
    deal_id = _funded(client, keys_dir, rt, "6226000000000025")
    custody = load_deal(rt, deal_id).custody_amount_fen
    assert custody == 123_456_789

    agreement = load_deal(rt, deal_id).agreement
    assert agreement is not None
    assert "放款计划" in agreement.html and "过户完成后释放" in agreement.html and "物业交割后释放" in agreement.html
    assert "¥1,111,111.10" in agreement.html and "壹佰壹拾壹万壹仟壹佰壹拾壹元壹角" in agreement.html
    assert "¥123,456.79" in agreement.html and "壹拾贰万叁仟肆佰伍拾陆元柒角玖分" in agreement.html

    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    assert [p.amount_fen for p in _pay(client, keys_dir, rt, deal_id)] == [111_111_110]
    deal = load_deal(rt, deal_id)
    assert deal.state == "partly_released" and _custody(rt, deal.deal_no) == 12_345_679

    page = login("ops").get(f"/deals/{deal_id}").text
    assert "物业交割完成原因" in page and "部分放款" in page
    answer = post_confirmed(  # money moves: the confirmation page first
        client, f"/deals/{deal_id}/actions/handover_done", {"csrf_token": csrf_token(page), "reason": "已办理物业交割"}
    )
    assert answer.status_code == 302
    payouts = _pay(client, keys_dir, rt, deal_id)
    assert [(p.amount_fen, p.payee_account) for p in payouts] == [
        (111_111_110, RESALE_FORM["seller_bank_account"]),
        (12_345_679, RESALE_FORM["seller_bank_account"]),
    ]
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed" and _custody(rt, deal.deal_no) == 0
    with rt.db.uow() as uow:
        assert check_ledger(uow.session).ok


GOV_PLAN = {
    "conditions": ["title_transferred", "gov_approved"],
    "tranches": [
        {"label": "核准放款", "share_bps": 9000, "event": "gov_approved"},
        {"label": "交割尾款", "remainder": True, "event": "handover_done"},
    ],
}
_GOV_V2 = {
    "workflow": {"id": "gov_escrow", "version": 2},
    "agreement": {"template": "gov_escrow/v2"},
    "banks": ["ceb"],
    "approvals": [],
    "release": GOV_PLAN,
}


def test_a_government_escrow_plan_waits_for_the_approval_then_releases_90_then_10(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    patch_city(rt, "330100", {"products": {"gov_escrow": _GOV_V2}})
    agent, ops = actor(rt, "agent"), actor(rt, "ops")
    form = sample_form(rt.cities.get("330100").product("gov_escrow"), rt.products.get("gov_escrow"))
    deal_id = deals.create_deal(rt, agent, "330100", "gov_escrow", form | {"custody_bank": "ceb"})
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000026")
    custody = load_deal(rt, deal_id).custody_amount_fen
    arrive(client, keys_dir, "6226000000000026", custody, "S-GOV-PLAN")
    assert custody == 123_456_789 and load_deal(rt, deal_id).state == "funded"
    agreement = load_deal(rt, deal_id).agreement
    assert agreement is not None and "放款计划" in agreement.html
    assert "监管部门核准放款后释放" in agreement.html and "物业交割后释放" in agreement.html
    assert "¥1,111,111.10" in agreement.html and "¥123,456.79" in agreement.html

    deals.manual_action(rt, ops, deal_id, "handover_done", "已办理物业交割")  # before approval: recorded only
    deals.record_title_transferred(rt, ops, deal_id)
    deal = load_deal(rt, deal_id)
    assert deal.state == "awaiting_approval" and deal.payouts == [] and _custody(rt, deal.deal_no) == custody

    deals.manual_action(rt, ops, deal_id, "gov_approved", "住建局核准")  # both tranches are due now
    payouts = _pay(client, keys_dir, rt, deal_id)
    assert [(p.amount_fen, p.payee_account) for p in payouts] == [
        (111_111_110, form["seller_bank_account"]),
        (12_345_679, form["seller_bank_account"]),
    ]
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed" and _custody(rt, deal.deal_no) == 0
    with rt.db.uow() as uow:
        assert check_ledger(uow.session).ok


def test_a_government_escrow_plan_pays_the_rest_at_handover_after_the_approval(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    patch_city(rt, "330100", {"products": {"gov_escrow": _GOV_V2}})
    agent, ops = actor(rt, "agent"), actor(rt, "ops")
    form = sample_form(rt.cities.get("330100").product("gov_escrow"), rt.products.get("gov_escrow"))
    deal_id = deals.create_deal(rt, agent, "330100", "gov_escrow", form | {"custody_bank": "ceb"})
    deals.confirm_agreement(rt, agent, deal_id)
    open_account(client, keys_dir, rt, deal_id, "6226000000000027")
    arrive(client, keys_dir, "6226000000000027", load_deal(rt, deal_id).custody_amount_fen, "S-GOV-PLAN-2")
    deals.record_title_transferred(rt, ops, deal_id)
    deals.manual_action(rt, ops, deal_id, "gov_approved", "住建局核准")
    assert [p.amount_fen for p in _pay(client, keys_dir, rt, deal_id)] == [111_111_110]
    deal = load_deal(rt, deal_id)
    assert deal.state == "partly_released" and _custody(rt, deal.deal_no) == 12_345_679

    deals.manual_action(rt, ops, deal_id, "handover_done", "已办理物业交割")
    assert [p.amount_fen for p in _pay(client, keys_dir, rt, deal_id)] == [111_111_110, 12_345_679]
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed" and _custody(rt, deal.deal_no) == 0
    with rt.db.uow() as uow:
        assert check_ledger(uow.session).ok
