"""Ops retry a failed payout or cancel a deal from the deal page: a reason is required and audited."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from app.db.audit_models import AuditEntry
from app.deals import service as deals
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import (
    CUSTODY_FEN,
    RESALE_FORM,
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

ACCOUNT = "6226000000000555"


def _failed_payout(client: FlaskClient, rt: Runtime, keys_dir: Path) -> int:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    arrive(client, keys_dir, ACCOUNT, CUSTODY_FEN, "REF-MAN")
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    payout_id = load_deal(rt, deal_id).payouts[0].payout_id
    bank_accepted(rt, payout_id)
    failed = notification(
        "payout_result", payout_id=payout_id, bank_reference="B-F", status="failed", failure_reason="收款账户状态异常"
    )
    assert post_callback(client, keys_dir, failed)[0] == 200
    assert load_deal(rt, deal_id).state == "payout_failed"
    return deal_id


def test_ops_retry_a_failed_payout_with_a_reason(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login: Callable[[str], FlaskClient]
) -> None:
    deal_id = _failed_payout(client, rt, keys_dir)
    ops = login("ops")
    page = ops.get(f"/deals/{deal_id}").text
    assert "重新付款原因" in page
    token = csrf_token(page)
    refused = ops.post(f"/deals/{deal_id}/actions/retry_payout", data={"csrf_token": token, "reason": " "})
    assert "请填写操作原因" in ops.get(refused.headers["Location"]).text
    assert load_deal(rt, deal_id).state == "payout_failed"
    done = post_confirmed(
        ops, f"/deals/{deal_id}/actions/retry_payout", {"csrf_token": token, "reason": "卖方已更正账户"}
    )
    assert done.status_code == 302
    deal = load_deal(rt, deal_id)
    assert deal.state == "releasing" and len(deal.payouts) == 2 and deal.payouts[1].status == "pending"
    with rt.db.uow() as uow:
        entry = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "deal.retry_payout")).one()
        assert entry.actor == "user:ops" and "卖方已更正账户" in str(entry.detail)
    agent = login("agent")
    agent_token = csrf_token(agent.get("/deals").text)
    answer = agent.post(f"/deals/{deal_id}/actions/retry_payout", data={"csrf_token": agent_token, "reason": "x"})
    assert answer.status_code == 403


def test_ops_cancel_a_deal_not_yet_signed_and_the_workflow_refuses_later(
    client: FlaskClient, rt: Runtime, users: dict, login: Callable[[str], FlaskClient]
) -> None:
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", RESALE_FORM)
    ops = login("ops")
    token = csrf_token(ops.get(f"/deals/{deal_id}").text)
    post_confirmed(ops, f"/deals/{deal_id}/actions/cancel", {"csrf_token": token, "reason": "买卖双方解约"})
    assert load_deal(rt, deal_id).state == "cancelled"
    signed = confirmed_deal(rt)
    answer = post_confirmed(ops, f"/deals/{signed}/actions/cancel", {"csrf_token": token, "reason": "试试"})
    assert load_deal(rt, signed).state == "awaiting_account", "a signed deal is not cancelled this way"
    assert answer.status_code == 302
    assert ops.post(f"/deals/{signed}/actions/freeze", data={"csrf_token": token}).status_code == 404
