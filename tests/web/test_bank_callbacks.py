"""The bank callback endpoint: verification before anything, idempotent processing, money never dropped."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.banks.protocol import BANK_PREFIX, sign_headers
from app.crypto.keys import generate_sm2_private_key_pem
from app.db.models import BankNotification, Job, Payout, SeenNonce
from app.deals import service as deals
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from tests.factories import (
    CUSTODY_FEN,
    HAPPY_PATH_EVENTS,
    actor,
    arrive,
    bank_accepted,
    bank_signing_key,
    confirmed_deal,
    load_deal,
    notification,
    open_account,
    post_callback,
)

ACCOUNT = "6226000000000001"


def _inbox_count(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(BankNotification)) or 0


def _balance(rt: Runtime, code: str) -> int:
    with rt.db.uow() as uow:
        return LedgerRepository(uow.session).balance(code)


def test_journey_through_callbacks(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, login: Callable[[str], FlaskClient]
) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    deal = load_deal(rt, deal_id)
    assert deal.state == "awaiting_funds"
    assert deal.virtual_account is not None and deal.virtual_account.account_no == ACCOUNT

    arrive(client, keys_dir, ACCOUNT, 100_000_00, "REF-1")
    assert load_deal(rt, deal_id).state == "awaiting_funds", "a partial payment keeps it awaiting funds"
    arrive(client, keys_dir, ACCOUNT, CUSTODY_FEN - 100_000_00, "REF-2")
    deal = load_deal(rt, deal_id)
    assert deal.state == "funded"
    assert _balance(rt, f"custody:{deal.deal_no}") == CUSTODY_FEN

    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    deal = load_deal(rt, deal_id)
    assert deal.state == "releasing"
    payout = deal.payouts[0]
    assert payout.amount_fen == CUSTODY_FEN and payout.payee_account == "6222020200112233445"
    with rt.db.uow() as uow:
        kinds = list(uow.session.scalars(select(Job.kind).order_by(Job.id)))
    assert kinds == ["agreement_countersign", "open_virtual_account", "submit_payout"]

    bank_accepted(rt, payout.payout_id, "B-9")
    result = notification(
        "payout_result", payout_id=payout.payout_id, bank_reference="B-9", status="succeeded", failure_reason=None
    )
    status, answer = post_callback(client, keys_dir, result)
    assert (status, answer["code"]) == (200, "OK")
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed"
    assert [event.event for event in deal.events] == HAPPY_PATH_EVENTS
    assert [event.actor for event in deal.events][-1] == "bank:ceb"
    assert _balance(rt, f"custody:{deal.deal_no}") == 0
    assert _balance(rt, "bank_clearing:ceb") == 0
    with rt.db.uow() as uow:
        report = check_ledger(uow.session)
    assert report.ok, report.problems
    assert report.transfers_checked == 4
    page = login("agent").get(f"/deals/{deal_id}").text
    assert "放款成功，存管结清" in page and "多付款项原路退回" not in page, "nothing was paid too much"
    assert "到账 ¥100,000.00（应付 ¥1,234,567.89，尚差 ¥1,134,567.89）" in page
    assert "资金足额到账" in page and "到账 ¥1,134,567.89，存管余额 ¥1,234,567.89<" in page


def test_duplicate_forged_stale_replayed_change_nothing(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    first = arrive(client, keys_dir, ACCOUNT, 500_00, "REF-A")
    code = f"custody:{load_deal(rt, deal_id).deal_no}"
    inbox = _inbox_count(rt)

    status, answer = post_callback(client, keys_dir, first)
    assert (status, answer["code"]) == (200, "DUPLICATE")

    forged = notification("funds_arrived", **{k: v for k, v in first.items() if k not in ("notification_id", "type")})
    forged["bank_reference"] = "REF-FORGED"
    status, answer = post_callback(client, keys_dir, forged, signing_key=generate_sm2_private_key_pem())
    assert (status, answer["code"]) == (401, "BAD_SIGNATURE")

    stale = {**forged, "bank_reference": "REF-STALE"}
    status, answer = post_callback(client, keys_dir, stale, now=time.time() - 301)
    assert (status, answer["code"]) == (401, "STALE_TIMESTAMP")

    replay_body = {**forged, "bank_reference": "REF-REPLAY"}
    status, _ = post_callback(
        client,
        keys_dir,
        notification("account_opened", request_id="X" * 16, account_no="1" * 16, account_name="x"),
        nonce="nonce-used-once-0001",
    )
    assert status == 200
    status, answer = post_callback(client, keys_dir, replay_body, nonce="nonce-used-once-0001")
    assert (status, answer["code"]) == (401, "REPLAYED_NONCE")

    assert _balance(rt, code) == 500_00
    assert _inbox_count(rt) == inbox + 1, "only the signed, fresh, unseen account_opened was stored"


def test_same_bank_reference_under_a_new_notification_id_posts_once(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    body = arrive(client, keys_dir, ACCOUNT, 700_00, "REF-SAME")
    again = {**body, "notification_id": "N-another-id"}
    status, answer = post_callback(client, keys_dir, again)
    assert (status, answer["code"]) == (200, "DUPLICATE"), "as documented: the same money under a new id"
    assert _balance(rt, f"custody:{load_deal(rt, deal_id).deal_no}") == 700_00


def test_money_for_an_unknown_account_goes_to_suspense(client: FlaskClient, rt: Runtime, keys_dir: Path) -> None:
    arrive(client, keys_dir, "6226999999999999", 321_00, "REF-LOST")
    assert _balance(rt, "suspense:ceb") == 321_00
    assert _balance(rt, "bank_clearing:ceb") == 321_00
    with rt.db.uow() as uow:
        assert uow.session.scalar(select(BankNotification.outcome)) == "suspense"


def test_malformed_unknown_bank_and_oversized(client: FlaskClient, rt: Runtime, keys_dir: Path) -> None:
    status, answer = post_callback(client, keys_dir, notification("funds_arrived", amount_fen=-5))
    assert (status, answer["code"]) == (400, "MALFORMED")
    assert answer["errors"], "the errors are listed"
    fractional = notification(
        "funds_arrived",
        bank_reference="R-float",
        account_no=ACCOUNT,
        amount_fen=5.0,
        payer_name="张三",
        payer_account="6226620012345678",
        arrived_at="2026-11-23T08:00:00Z",
    )
    status, answer = post_callback(client, keys_dir, fractional)
    assert (status, answer["code"]) == (400, "MALFORMED"), "5.0 fen is not an integer amount"
    status, answer = post_callback(client, keys_dir, b"{not json")
    assert (status, answer["code"]) == (400, "MALFORMED")
    status, answer = post_callback(
        client, keys_dir, notification("account_opened"), bank="nosuchbank", signing_key=generate_sm2_private_key_pem()
    )
    assert (status, answer["code"]) == (404, "UNKNOWN_BANK")
    big = json.dumps({"padding": "x" * (65 * 1024)}).encode()
    assert client.post("/api/banks/ceb/notifications", data=big).status_code == 413
    assert _inbox_count(rt) == 0


def test_failed_payout_is_recorded_and_can_be_retried(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    arrive(client, keys_dir, ACCOUNT, CUSTODY_FEN, "REF-FULL")
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    payout_id = load_deal(rt, deal_id).payouts[0].payout_id
    bank_accepted(rt, payout_id, "B-1")
    failed = notification(
        "payout_result", payout_id=payout_id, bank_reference="B-1", status="failed", failure_reason="收款账户状态异常"
    )
    assert post_callback(client, keys_dir, failed)[0] == 200
    deal = load_deal(rt, deal_id)
    assert deal.state == "payout_failed"
    assert deal.events[-1].detail["failure_reason"] == "收款账户状态异常"
    with rt.db.uow() as uow:
        custody = LedgerRepository(uow.session).account(f"custody:{deal.deal_no}")
        assert (custody.credits_posted - custody.debits_posted, custody.debits_pending) == (CUSTODY_FEN, 0), (
            "the hold is voided: the money is free in custody again"
        )
    deals.fire_user_event(rt, actor(rt, "ops"), deal_id, "retry_payout", ("ops",))
    deal = load_deal(rt, deal_id)
    assert deal.state == "releasing" and len(deal.payouts) == 2
    late_success = {**failed, "notification_id": "N-late", "status": "succeeded", "failure_reason": None}
    assert post_callback(client, keys_dir, late_success)[1]["code"] == "OK"
    with rt.db.uow() as uow:
        first = uow.session.scalar(select(Payout).where(Payout.payout_id == payout_id))
        assert first is not None and first.status == "failed", "a final payout never flips"
        assert check_ledger(uow.session).ok


def test_ping_checks_the_signature_and_stores_nothing(client: FlaskClient, keys_dir: Path, rt: Runtime) -> None:
    body = b'{"hello": "bank"}'
    key = bank_signing_key(keys_dir)
    headers = sign_headers(BANK_PREFIX, key, body)
    answer = client.post("/api/banks/ceb/ping", data=body, headers=headers, content_type="application/json")
    assert (answer.status_code, answer.get_json()["code"]) == (200, "PONG")
    again = client.post("/api/banks/ceb/ping", data=body, headers=headers, content_type="application/json")
    assert again.status_code == 200, "a replayed ping changes nothing, so it is not refused"
    forged = client.post(
        "/api/banks/ceb/ping", data=b'{"hello": "x"}', headers=headers, content_type="application/json"
    )
    assert (forged.status_code, forged.get_json()["code"]) == (401, "BAD_SIGNATURE")
    assert client.post("/api/banks/nobank/ping", data=body, headers=headers).status_code == 404
    with rt.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(SeenNonce)) == 0


def test_a_notification_whose_processing_fails_is_kept_and_processed_when_resent(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, monkeypatch
) -> None:
    from app.bank_inbox import handlers as bank_handlers

    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    real = bank_handlers.HANDLERS["funds_arrived"]

    def broken(*args: object) -> str:
        real(*args)  # writes, then fails: everything it wrote must be rolled back
        raise ValidationError("处理失败（测试）", code="TEST_FAILURE")

    monkeypatch.setitem(bank_handlers.HANDLERS, "funds_arrived", broken)
    body = notification(
        "funds_arrived",
        bank_reference="REF-KEEP",
        account_no=ACCOUNT,
        amount_fen=CUSTODY_FEN,
        payer_name="张三",
        payer_account="6226620012345678",
        arrived_at="2026-11-23T08:00:00Z",
    )
    status, answer = post_callback(client, keys_dir, body)
    assert (status, answer["code"]) == (409, "CONFLICT")
    with rt.db.uow() as uow:
        inbox = uow.session.scalars(select(BankNotification).where(BankNotification.type == "funds_arrived")).one()
        assert inbox.processed_at is None and "REF-KEEP" in inbox.raw_body, "kept raw, not processed"
        assert check_ledger(uow.session).transfers_checked == 0, "nothing of the failed run stayed"
    monkeypatch.setitem(bank_handlers.HANDLERS, "funds_arrived", real)
    status, answer = post_callback(client, keys_dir, body)  # the bank resends: same body, new nonce
    assert (status, answer["code"]) == (200, "OK")
    assert load_deal(rt, deal_id).state == "funded"
