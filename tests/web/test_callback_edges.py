"""Issue 15 case 9 (its first two parts), through HTTP: a notification id the bank used before, sent with
another body, is refused (409 CONFLICT) and the first body stands; a payout result for a payout never sent to
the bank (awaiting approval, pending and never sent, unknown) is refused (409 PAYOUT_NOT_SUBMITTED) and changes
nothing, while a result for a payout the bank accepted before the worker died is accepted. Refusals are kept
as callback alerts, shown to finance and ops, resolved with a reason (audited)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.bank_inbox.inbox import drain_inbox
from app.db.audit_models import AuditEntry
from app.db.callback_models import CallbackAlert
from app.db.ledger_models import LedgerTransfer
from app.deals import service as deals
from app.ledger.repo import LedgerRepository
from app.payouts import jobs as payout_jobs
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import (
    CUSTODY_FEN,
    actor,
    bank_accepted,
    bank_signing_key,
    confirmed_deal,
    load_deal,
    notification,
    open_account,
    post_callback,
    post_confirmed,
    virtual_account,
)

Login = Callable[[str], FlaskClient]
ACCOUNT = "6226000000000009"


def _alerts(rt: Runtime) -> list[CallbackAlert]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(CallbackAlert).order_by(CallbackAlert.id)))


def _custody(rt: Runtime, deal_id: int) -> int:
    with rt.db.uow() as uow:
        return LedgerRepository(uow.session).balance(f"custody:{load_deal(rt, deal_id).deal_no}")


def _transfers(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        return len(list(uow.session.scalars(select(LedgerTransfer.id))))


def _post_result(client: FlaskClient, keys_dir: Path, payout_id: str, reference: str) -> tuple[int, dict]:
    body = notification("payout_result", payout_id=payout_id, bank_reference=reference, status="succeeded")
    return post_callback(client, keys_dir, body | {"failure_reason": None})


def _arrival(notification_id: str, amount_fen: int, reference: str) -> dict:
    body = notification(
        "funds_arrived",
        bank_reference=reference,
        account_no=ACCOUNT,
        amount_fen=amount_fen,
        payer_name="张三",
        payer_account="6226620012345678",
        arrived_at="2026-11-23T08:00:00Z",
    )
    return body | {"notification_id": notification_id}


@pytest.mark.parametrize("mode", ["inline", "inbox"])
def test_a_notification_id_reused_with_another_body_is_refused_and_kept_for_review(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login: Login, mode: str, monkeypatch
) -> None:
    monkeypatch.setenv("CUNGUAN_CALLBACK_PROCESSING", mode)
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    first = _arrival("N-SAME-1", 100_000_00, "REF-1")
    assert post_callback(client, keys_dir, first) == (200, {"code": "OK"})
    if mode == "inbox":
        drain_inbox(rt)
    assert _custody(rt, deal_id) == 100_000_00

    # the same content again, spaced and ordered differently: a resend, answered as such
    resend = json.dumps(dict(reversed(list(first.items()))), ensure_ascii=False, indent=2).encode()
    assert post_callback(client, keys_dir, resend) == (200, {"code": "DUPLICATE"})

    changed = first | {"amount_fen": CUSTODY_FEN}  # the same id, now claiming the whole custody amount
    status, answer = post_callback(client, keys_dir, changed)
    assert (status, answer["code"]) == (409, "CONFLICT"), answer
    assert post_callback(client, keys_dir, changed)[0] == 409, "refused again when resent"
    if mode == "inbox":
        drain_inbox(rt)
    assert _custody(rt, deal_id) == 100_000_00 and load_deal(rt, deal_id).state == "awaiting_funds"
    (alert,) = _alerts(rt)
    assert (alert.kind, alert.notification_id, alert.bank_code) == ("notification_conflict", "N-SAME-1", "ceb")
    assert json.loads(alert.raw_body)["amount_fen"] == CUSTODY_FEN and alert.resolved_at is None

    for role in ("finance", "ops", "auditor"):
        page = login(role).get("/finance/callback-alerts").text
        assert f'id="alert-{alert.id}"' in page and "同一通知编号内容不同" in page, role
    assert login("agent").get("/finance/callback-alerts").status_code == 403
    auditor = login("auditor")
    token = csrf_token(auditor.get("/finance/callback-alerts").text)
    refused = auditor.post(
        f"/finance/callback-alerts/{alert.id}/resolve", data={"csrf_token": token, "resolution": "x"}
    )
    assert refused.status_code == 403, "auditors read, they do not resolve"
    finance = login("finance")
    token = csrf_token(finance.get("/finance/callback-alerts").text)
    data = {"csrf_token": token, "resolution": "已与银行核实：第二条为银行系统错误"}
    page = finance.post(f"/finance/callback-alerts/{alert.id}/resolve", data=data, follow_redirects=True).text
    assert "告警已处理" in page and f'id="alert-{alert.id}"' not in page
    with rt.db.uow() as uow:
        entry = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "callback_alert.resolve")).one()
    assert entry.actor == "user:finance" and entry.after == {"resolution": "已与银行核实：第二条为银行系统错误"}


def test_a_result_for_a_payout_never_submitted_is_refused_and_changes_nothing(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login: Login
) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    assert post_callback(client, keys_dir, _arrival("N-FULL", CUSTODY_FEN, "REF-FULL"))[0] == 200
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    payout = load_deal(rt, deal_id).payouts[0]
    assert payout.status == "pending", "queued for the bank, not yet sent"

    transfers = _transfers(rt)

    status, answer = _post_result(client, keys_dir, payout.payout_id, "B-X")
    assert (status, answer["code"]) == (409, "PAYOUT_NOT_SUBMITTED"), answer
    assert answer["message"] == "付款结果对应的付款从未提交银行，已拒收并留待人工核查"
    assert answer["errors"] == {"payout_id": payout.payout_id, "status": "pending"}
    status, answer = _post_result(client, keys_dir, "PO-NEVER-MADE", "B-Y")
    assert (status, answer["code"]) == (409, "PAYOUT_NOT_SUBMITTED"), answer
    deal = load_deal(rt, deal_id)
    assert deal.state == "releasing" and deal.payouts[0].status == "pending"
    assert _custody(rt, deal_id) == CUSTODY_FEN and _transfers(rt) == transfers, "nothing moved in the ledger"
    assert [(a.kind, json.loads(a.raw_body)["payout_id"]) for a in _alerts(rt)] == [
        ("payout_not_submitted", payout.payout_id),
        ("payout_not_submitted", "PO-NEVER-MADE"),
    ]
    assert "未提交付款的付款结果" in login("ops").get("/finance/callback-alerts").text

    bank_accepted(rt, payout.payout_id, "B-X")  # the bank has it now: its result is accepted
    assert _post_result(client, keys_dir, payout.payout_id, "B-X") == (200, {"code": "OK"})
    assert load_deal(rt, deal_id).state == "closed" and _custody(rt, deal_id) == 0


@pytest.mark.parametrize("mode", ["inline", "inbox"])
def test_a_result_for_a_payout_awaiting_approval_is_refused_and_changes_nothing(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login: Login, mode: str, monkeypatch
) -> None:
    monkeypatch.setenv("CUNGUAN_CALLBACK_PROCESSING", mode)
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    assert post_callback(client, keys_dir, _arrival("N-FULL", CUSTODY_FEN, "REF-FULL"))[0] == 200
    drain_inbox(rt)  # inbox mode: the arrival is processed by the inbox worker (inline: nothing is waiting)
    ops = login("ops")
    token = csrf_token(ops.get(f"/deals/{deal_id}").text)
    data = {"csrf_token": token, "reason": "买卖双方解约，申请退款"}
    assert post_confirmed(ops, f"/deals/{deal_id}/actions/cancel", data).status_code == 302
    (refund,) = load_deal(rt, deal_id).payouts
    assert refund.status == "awaiting_approval", "北京: a refund needs a second person"
    transfers = _transfers(rt)

    status, answer = _post_result(client, keys_dir, refund.payout_id, "B-R")
    if mode == "inbox":
        assert status == 200, "stored first; the inbox worker finds the contradiction"
        drain_inbox(rt)
    else:
        assert (status, answer["code"]) == (409, "PAYOUT_NOT_SUBMITTED"), answer
        assert answer["errors"] == {"payout_id": refund.payout_id, "status": "awaiting_approval"}
    deal = load_deal(rt, deal_id)
    assert (deal.state, deal.payouts[0].status) == ("refunding", "awaiting_approval")
    assert _custody(rt, deal_id) == CUSTODY_FEN and _transfers(rt) == transfers, "nothing moved in the ledger"
    (alert,) = _alerts(rt)
    assert (alert.kind, json.loads(alert.raw_body)["payout_id"]) == ("payout_not_submitted", refund.payout_id)
    assert alert.detail["code"] == "PAYOUT_NOT_SUBMITTED" and alert.resolved_at is None
    assert "未提交付款的付款结果" in login("finance").get("/finance/callback-alerts").text


@pytest.mark.parametrize("mode", ["inline", "inbox"])
def test_an_account_number_outside_the_banks_format_is_refused_and_the_deal_waits(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login: Login, mode: str, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("CUNGUAN_CALLBACK_PROCESSING", mode)
    deal_id = confirmed_deal(rt)
    request_id = virtual_account(rt, deal_id).request_id
    # 光大 numbers are 6226 and 12 digits (bank_configs/ceb.json): one digit short, then another bank's prefix
    for number in ("622600000000009", "0200290100000000009"):
        body = notification("account_opened", request_id=request_id, account_no=number, account_name="存管")
        status, answer = post_callback(client, keys_dir, body)
        if mode == "inbox":
            assert status == 200, "stored first; the inbox worker finds the contradiction"
            drain_inbox(rt)
        else:
            assert (status, answer["code"]) == (409, "ACCOUNT_NUMBER_INVALID"), answer
            assert answer["message"] == "开户通知的账号不符合中国光大银行的账号格式，已拒收并留待人工核查"
    account, deal = virtual_account(rt, deal_id), load_deal(rt, deal_id)
    assert (deal.state, account.status, account.account_no) == ("awaiting_account", "requested", None)
    assert [(a.kind, json.loads(a.raw_body)["account_no"]) for a in _alerts(rt)] == [
        ("account_number_invalid", "622600000000009"),
        ("account_number_invalid", "0200290100000000009"),
    ]
    assert "callback refused and kept for review" in caplog.text
    assert "开户账号格式不符" in login("ops").get("/finance/callback-alerts").text

    open_account(client, keys_dir, rt, deal_id, ACCOUNT)  # the bank's real number is accepted
    if mode == "inbox":
        drain_inbox(rt)
    assert (load_deal(rt, deal_id).state, virtual_account(rt, deal_id).account_no) == ("awaiting_funds", ACCOUNT)


class _AcceptingBank:
    """A bank that accepts every payout submitted to it."""

    def __init__(self) -> None:
        self.submitted: list[str] = []

    def submit_payout(self, request: Any) -> str:
        self.submitted.append(request.payout_id)
        return "B-CRASH"


def test_a_result_after_the_worker_died_once_the_bank_accepted_is_accepted(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, monkeypatch
) -> None:
    """Sent, but the worker died before recording the bank's acceptance: the bank's result is true and taken."""
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    assert post_callback(client, keys_dir, _arrival("N-FULL", CUSTODY_FEN, "REF-FULL"))[0] == 200
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    payout_id = load_deal(rt, deal_id).payouts[0].payout_id
    bank = _AcceptingBank()
    monkeypatch.setattr(rt, "gateway", lambda bank_code: bank)

    def worker_dies(*args: Any) -> None:
        raise SystemExit("worker killed after the bank accepted")

    monkeypatch.setattr(payout_jobs, "_mark_submitted", worker_dies)
    with pytest.raises(SystemExit):
        payout_jobs.submit_payout(rt, {"payout_id": payout_id})
    assert bank.submitted == [payout_id]
    payout = load_deal(rt, deal_id).payouts[0]
    assert payout.status == "pending" and payout.sent_at is not None, "sent was recorded before the bank call"

    assert _post_result(client, keys_dir, payout_id, "B-CRASH") == (200, {"code": "OK"})
    deal = load_deal(rt, deal_id)
    assert (deal.state, deal.payouts[0].status) == ("closed", "succeeded") and _custody(rt, deal_id) == 0
    assert _alerts(rt) == []


def test_a_forged_conflict_is_not_even_an_alert(client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict) -> None:
    """Only the bank's signature makes a notification worth reviewing: anything else is 401 and leaves nothing."""
    body = notification("payout_result", payout_id="PO-1", bank_reference="B-1", status="succeeded")
    forged = bank_signing_key(keys_dir, "icbc")  # another bank's key
    assert post_callback(client, keys_dir, body | {"failure_reason": None}, signing_key=forged)[0] == 401
    assert _alerts(rt) == []
