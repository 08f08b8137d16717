"""Issue 16, contention: many arrivals at one account at once (inline processing) are each answered 200 or
409 with a code, never 5xx, and the money booked is exactly what arrived; a serialization failure or deadlock
is retried, and answered 409 BUSY (callbacks and ops actions alike) when retries do not settle it."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from app.bank_inbox import handlers, receive
from app.db.models import BankNotification
from app.deals import service as deals
from app.ledger.repo import LedgerRepository
from app.platform.runtime import Runtime
from tests.conftest import csrf_token
from tests.factories import confirmed_deal, load_deal, notification, open_account, post_callback

ACCOUNT = "6226000000000001"
ARRIVALS = 50
AMOUNT_FEN = 100


def test_concurrent_arrivals_at_one_account_get_no_5xx(
    app: Flask, client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    bodies = [
        notification(
            "funds_arrived",
            bank_reference=f"REF-{index}",
            account_no=ACCOUNT,
            amount_fen=AMOUNT_FEN,
            payer_name="张三",
            payer_account="6226620012345678",
            arrived_at="2026-11-23T08:00:00Z",
        )
        for index in range(ARRIVALS)
    ]

    def send(body: dict) -> tuple[int, dict]:
        return post_callback(app.test_client(), keys_dir, body)

    with ThreadPoolExecutor(max_workers=ARRIVALS) as pool:
        answers = list(pool.map(send, bodies))
    assert not [answer for answer in answers if answer[0] >= 500], answers
    assert all(status in (200, 409) and answer.get("code") for status, answer in answers), answers
    for body, (status, _) in zip(bodies, answers, strict=True):
        if status != 200:  # the bank resends what was not acknowledged
            resent = post_callback(client, keys_dir, body)
            assert resent[0] == 200, resent
    deal = load_deal(rt, deal_id)
    with rt.db.uow() as uow:
        assert LedgerRepository(uow.session).balance(f"custody:{deal.deal_no}") == ARRIVALS * AMOUNT_FEN


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"simulated {sqlstate}")
        self.sqlstate = sqlstate


def _contention(sqlstate: str = "40001") -> OperationalError:
    return OperationalError("UPDATE ...", {}, _PgError(sqlstate))


def _arrival(reference: str) -> dict[str, Any]:
    return notification(
        "funds_arrived",
        bank_reference=reference,
        account_no=ACCOUNT,
        amount_fen=AMOUNT_FEN,
        payer_name="张三",
        payer_account="6226620012345678",
        arrived_at="2026-11-23T08:00:00Z",
    )


def _custody(rt: Runtime, deal_id: int) -> int:
    with rt.db.uow() as uow:
        return LedgerRepository(uow.session).balance(f"custody:{load_deal(rt, deal_id).deal_no}")


def test_a_serialization_failure_is_retried_and_booked_once(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    real = handlers.HANDLERS["funds_arrived"]
    failures = iter([_contention("40001"), _contention("40P01")])

    def flaky(*args: Any) -> str:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real(*args)

    monkeypatch.setitem(handlers.HANDLERS, "funds_arrived", flaky)
    monkeypatch.setattr(receive, "CONTENTION_BACKOFF_S", 0.0)
    status, answer = post_callback(client, keys_dir, _arrival("REF-R"))
    assert (status, answer["code"]) == (200, "OK"), answer
    assert _custody(rt, deal_id) == AMOUNT_FEN


def test_contention_that_does_not_settle_is_409_busy_and_the_resend_is_booked(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    real = handlers.HANDLERS["funds_arrived"]

    def always(*args: Any) -> str:
        raise _contention("55P03")

    monkeypatch.setitem(handlers.HANDLERS, "funds_arrived", always)
    monkeypatch.setattr(receive, "CONTENTION_BACKOFF_S", 0.0)
    body = _arrival("REF-B")
    with rt.db.uow() as uow:
        before = uow.session.scalar(select(func.count()).select_from(BankNotification))
    status, answer = post_callback(client, keys_dir, body)
    assert (status, answer["code"]) == (409, "BUSY"), answer
    assert _custody(rt, deal_id) == 0
    with rt.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(BankNotification)) == before
    monkeypatch.setitem(handlers.HANDLERS, "funds_arrived", real)
    status, answer = post_callback(client, keys_dir, body)
    assert (status, answer["code"]) == (200, "OK"), answer
    assert _custody(rt, deal_id) == AMOUNT_FEN


def test_an_ops_action_meeting_a_deadlock_is_409_busy(
    login: Callable[[str], FlaskClient], rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal_id = confirmed_deal(rt)
    client = login("ops")

    def deadlocked(*args: Any, **kwargs: Any) -> None:
        raise _contention("40P01")

    monkeypatch.setattr(deals, "manual_action", deadlocked)
    event = next(iter(deals.MANUAL_ACTIONS))
    token = csrf_token(client.get(f"/deals/{deal_id}").text)
    answer = client.post(
        f"/deals/{deal_id}/actions/{event}",
        data={"reason": "测试", "csrf_token": token},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 409
    assert answer.get_json()["code"] == "BUSY"
