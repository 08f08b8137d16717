"""Acknowledged inbox (CUNGUAN_CALLBACK_PROCESSING=inbox): the 200 means stored; workers process the inbox
in order, exactly once, and a worker killed mid-batch loses nothing.

Run as a script (`python test_callback_inbox.py DATABASE_URL INSTANCE KEYS STALL_AFTER`), this file is the
processor that the kill test starts: it processes the inbox in batches and stalls inside a batch after
STALL_AFTER rows, printing "stalled", so that the test kills it mid-batch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from app.bank_inbox import handlers, inbox, store
from app.db.ledger_models import LedgerTransfer
from app.db.models import BankNotification, DealEvent
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.errors import ConfigError, ValidationError
from app.platform.runtime import Runtime
from app.queue.worker import run_worker
from tests.conftest import make_config
from tests.factories import (
    CUSTODY_FEN,
    confirmed_deal,
    load_deal,
    notification,
    open_account,
    post_callback,
)

BATCH = 4

ACCOUNT = "6226000000000042"


def _arrival(amount_fen: int, reference: str) -> dict:
    return notification(
        "funds_arrived",
        bank_reference=reference,
        account_no=ACCOUNT,
        amount_fen=amount_fen,
        payer_name="张三",
        payer_account="6226620012345678",
        arrived_at="2026-11-23T08:00:00Z",
    )


def _inbox(rt: Runtime) -> list[BankNotification]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(BankNotification).order_by(BankNotification.id)))


def _custody(rt: Runtime, deal_id: int) -> int:
    deal = load_deal(rt, deal_id)
    with rt.db.uow() as uow:
        return LedgerRepository(uow.session).balance(f"custody:{deal.deal_no}")


def _awaiting_funds(client: FlaskClient, rt: Runtime, keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """A deal whose account is open (processed inline), then inbox mode switched on."""
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    assert load_deal(rt, deal_id).state == "awaiting_funds"
    monkeypatch.setenv("CUNGUAN_CALLBACK_PROCESSING", "inbox")
    return deal_id


def test_the_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUNGUAN_CALLBACK_PROCESSING", raising=False)
    assert store.processing_mode() == "inline", "inline is the default"
    monkeypatch.setenv("CUNGUAN_CALLBACK_PROCESSING", "Inbox ")
    assert store.processing_mode() == "inbox"
    monkeypatch.setenv("CUNGUAN_CALLBACK_PROCESSING", "later")
    with pytest.raises(ConfigError):
        store.processing_mode()


def test_acknowledged_callbacks_are_processed_in_order_by_the_worker(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal_id = _awaiting_funds(client, rt, keys_dir, monkeypatch)
    first, second = _arrival(100_000_00, "REF-A"), _arrival(CUSTODY_FEN - 100_000_00, "REF-B")
    assert post_callback(client, keys_dir, first) == (200, {"code": "OK"})
    assert post_callback(client, keys_dir, second) == (200, {"code": "OK"})

    stored = _inbox(rt)[-2:]
    assert [row.processed_at for row in stored] == [None, None], "acknowledged, not processed"
    assert load_deal(rt, deal_id).state == "awaiting_funds"
    assert store.inbox_backlog(rt).due == 2
    if rt.db.engine.dialect.name == "postgresql":  # one processor per partition: another one holds this one
        partition = store.inbox_partition(first)
        assert partition == store.inbox_partition(second), "one account, one partition"
        with rt.db.engine.begin() as other:
            other.execute(select(func.pg_advisory_xact_lock(func.hashtext(inbox.INBOX_LOCK), partition)))
            assert inbox.process_inbox(rt) == inbox.InboxBatch(0, 0, interrupted=False)
        assert store.inbox_backlog(rt).due == 2

    run_worker(rt, should_stop=lambda: False, burst=True, maintenance_s=3600)  # `flask worker --burst`
    stored = _inbox(rt)[-2:]
    assert all(row.processed_at is not None for row in stored)
    assert [row.outcome for row in stored] == ["processed", "processed"]
    deal = load_deal(rt, deal_id)
    assert deal.state == "funded"
    arrivals = [e.detail["bank_reference"] for e in deal.events if e.event == "funds_arrived"]
    assert arrivals == ["REF-A", "REF-B"], "processed in order of receipt"
    assert _custody(rt, deal_id) == CUSTODY_FEN
    backlog = store.inbox_backlog(rt)
    assert (backlog.due, backlog.failed, backlog.oldest_due_at) == (0, 0, None)


def test_processors_share_the_inbox_by_partition_each_account_in_order(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notifications are partitioned by account (or payout): while one processor holds a partition, others
    process the rest, and each account's arrivals are still applied in the order they were received."""
    accounts: dict[int, str] = {}  # partition -> an account number in it
    for n in range(100):
        accounts.setdefault(store.inbox_partition({"account_no": f"62260000000001{n:02d}"}), f"62260000000001{n:02d}")
    first, other = sorted(accounts)[:2]
    deals: dict[str, int] = {}
    for account_no in (accounts[first], accounts[other]):
        deals[account_no] = confirmed_deal(rt)
        open_account(client, keys_dir, rt, deals[account_no], account_no)
    monkeypatch.setenv("CUNGUAN_CALLBACK_PROCESSING", "inbox")
    references = {account_no: [f"REF-{account_no[-2:]}-{n}" for n in range(3)] for account_no in deals}
    for n in range(3):  # interleaved, as a bank sends them
        for account_no in deals:
            body = _arrival(1_000_00, references[account_no][n]) | {"account_no": account_no}
            assert post_callback(client, keys_dir, body) == (200, {"code": "OK"})
    assert {row.partition_no for row in _inbox(rt) if row.processed_at is None} == {first, other}

    def arrivals(account_no: str) -> list[str]:
        deal = load_deal(rt, deals[account_no])
        return [e.detail["bank_reference"] for e in deal.events if e.event == "funds_arrived"]

    if rt.db.engine.dialect.name == "postgresql":
        with rt.db.engine.begin() as busy:  # another processor is working on the first partition
            busy.execute(select(func.pg_advisory_xact_lock(func.hashtext(inbox.INBOX_LOCK), first)))
            assert inbox.drain_inbox(rt) == 3, "the other partition is not held up"
            assert arrivals(accounts[first]) == [] and arrivals(accounts[other]) == references[accounts[other]]
    assert inbox.drain_inbox(rt) == (3 if rt.db.engine.dialect.name == "postgresql" else 6)
    for account_no in deals:
        assert arrivals(account_no) == references[account_no], "each account in order of receipt"
        assert _custody(rt, deals[account_no]) == 3 * 1_000_00
    with rt.db.uow() as uow:
        assert check_ledger(uow.session).ok
    assert store.inbox_backlog(rt).due == 0


def test_a_resend_is_stored_once_and_processed_once(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal_id = _awaiting_funds(client, rt, keys_dir, monkeypatch)
    body = _arrival(CUSTODY_FEN, "REF-ONCE")
    assert post_callback(client, keys_dir, body) == (200, {"code": "OK"})
    assert post_callback(client, keys_dir, body) == (200, {"code": "OK"}), "held, not yet processed"
    assert inbox.drain_inbox(rt) == 1
    assert post_callback(client, keys_dir, body) == (200, {"code": "DUPLICATE"}), "processed before"
    assert inbox.drain_inbox(rt) == 0
    with rt.db.uow() as uow:
        rows = uow.session.scalar(
            select(func.count()).where(BankNotification.notification_id == body["notification_id"])
        )
        transfers = uow.session.scalar(select(func.count()).where(LedgerTransfer.code == "arrival"))
    assert (rows, transfers) == (1, 1)
    assert load_deal(rt, deal_id).state == "funded"


def test_a_replayed_nonce_is_refused_and_stores_nothing(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    _awaiting_funds(client, rt, keys_dir, monkeypatch)
    before = len(_inbox(rt))
    nonce = "replay-nonce-0000000001"
    assert post_callback(client, keys_dir, _arrival(1_00, "REF-N1"), nonce=nonce)[0] == 200
    status, answer = post_callback(client, keys_dir, _arrival(1_00, "REF-N2"), nonce=nonce)
    assert (status, answer["code"]) == (401, "REPLAYED_NONCE")
    assert len(_inbox(rt)) == before + 1


def test_a_failing_row_is_kept_for_review_and_a_resend_makes_it_due_again(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal_id = _awaiting_funds(client, rt, keys_dir, monkeypatch)
    real = handlers.HANDLERS["funds_arrived"]

    def broken(*args: object) -> str:
        real(*args)  # writes, then fails: its writes are rolled back, the row is marked
        raise ValidationError("处理失败（测试）", code="TEST_FAILURE")

    failing = _arrival(CUSTODY_FEN, "REF-FAIL")
    fine = notification("account_opened", request_id="VA-none", account_no=ACCOUNT, account_name="存管")
    assert post_callback(client, keys_dir, failing)[0] == 200
    assert post_callback(client, keys_dir, fine)[0] == 200
    monkeypatch.setitem(handlers.HANDLERS, "funds_arrived", broken)
    batch = inbox.process_inbox(rt)  # one account, one partition: one batch
    assert (batch.processed, batch.failed, batch.interrupted) == (1, 1, False), "one bad row stops nobody"
    rows = {row.notification_id: row for row in _inbox(rt)}
    assert rows[failing["notification_id"]].processed_at is None
    assert rows[failing["notification_id"]].outcome == "failed:TEST_FAILURE"
    assert rows[fine["notification_id"]].outcome == "unknown_request"
    with rt.db.uow() as uow:
        assert check_ledger(uow.session).transfers_checked == 0, "nothing of the failed run stayed"
    assert store.inbox_backlog(rt).failed == 1
    assert inbox.process_inbox(rt).processed == 0, "a failed row is not retried blindly"

    monkeypatch.setitem(handlers.HANDLERS, "funds_arrived", real)
    assert post_callback(client, keys_dir, failing) == (200, {"code": "OK"})  # the bank resends
    assert inbox.drain_inbox(rt) == 1
    assert load_deal(rt, deal_id).state == "funded"
    assert store.inbox_backlog(rt).failed == 0


def test_inline_mode_does_not_drain_in_the_worker(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal_id = _awaiting_funds(client, rt, keys_dir, monkeypatch)
    assert post_callback(client, keys_dir, _arrival(CUSTODY_FEN, "REF-LATER"))[0] == 200
    monkeypatch.setenv("CUNGUAN_CALLBACK_PROCESSING", "inline")
    run_worker(rt, should_stop=lambda: False, burst=True, maintenance_s=3600)
    assert load_deal(rt, deal_id).state == "awaiting_funds", "inline mode leaves the inbox to resends"
    monkeypatch.setenv("CUNGUAN_CALLBACK_PROCESSING", "inbox")
    run_worker(rt, should_stop=lambda: False, burst=True, maintenance_s=3600)
    assert load_deal(rt, deal_id).state == "funded"


def test_a_processor_killed_mid_batch_loses_nothing(
    app: Flask,
    client: FlaskClient,
    rt: Runtime,
    keys_dir: Path,
    users: dict,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    deal_id = _awaiting_funds(client, rt, keys_dir, monkeypatch)
    bodies = [_arrival(1_000_00, f"REF-K{n}") for n in range(10)]
    for body in bodies:
        assert post_callback(client, keys_dir, body) == (200, {"code": "OK"})
    stall_after = BATCH + 2  # the first batch commits, the second dies after two rows
    command = [sys.executable, __file__, rt.db.url, str(tmp_path / "child"), str(keys_dir), str(stall_after)]
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONPATH": str(root)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=root, env=environment)
    assert process.stdout is not None
    lines: list[str] = []
    while "stalled" not in lines:
        line = process.stdout.readline()
        assert line, f"processor ended early: {lines[-5:]}"
        lines.append(line.strip())
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert lines.count(f"committed {BATCH}") == 1, lines

    references = [body["bank_reference"] for body in bodies]
    with rt.db.uow() as uow:
        posted = list(uow.session.scalars(select(LedgerTransfer.id).where(LedgerTransfer.code == "arrival")))
    assert sorted(posted) == sorted(f"arrival:ceb:{ref}" for ref in references[:BATCH]), "only the first batch"
    assert store.inbox_backlog(rt).due == len(bodies) - BATCH, "the killed batch is due again"

    assert inbox.drain_inbox(rt) == len(bodies) - BATCH
    with rt.db.uow() as uow:
        posted = list(uow.session.scalars(select(LedgerTransfer.id).where(LedgerTransfer.code == "arrival")))
        events = list(
            uow.session.scalars(
                select(DealEvent.detail)
                .where(DealEvent.deal_id == deal_id, DealEvent.event == "funds_arrived")
                .order_by(DealEvent.id)
            )
        )
        report = check_ledger(uow.session)
    assert sorted(posted) == sorted(f"arrival:ceb:{ref}" for ref in references), "each exactly once"
    assert [detail["bank_reference"] for detail in events] == references, "in order of receipt"
    assert report.ok, report.problems
    assert _custody(rt, deal_id) == 10 * 1_000_00
    assert all(row.processed_at is not None for row in _inbox(rt))


def _stalling_processor(database_url: str, instance: str, keys: str, stall_after: int) -> None:
    rt = create_app(make_config(Path(instance), database_url, Path(keys))).extensions["cunguan.runtime"]
    real = handlers.HANDLERS["funds_arrived"]
    handled = [0]

    def counting(*args: object) -> str:
        outcome = real(*args)
        handled[0] += 1
        print(f"handled {handled[0]}", flush=True)
        if handled[0] == stall_after:
            print("stalled", flush=True)
            time.sleep(600)  # inside the batch's open transaction: the test kills us here
        return outcome

    handlers.HANDLERS["funds_arrived"] = counting
    while True:
        batch = inbox.process_inbox(rt, BATCH)
        print(f"committed {batch.processed}", flush=True)


if __name__ == "__main__":
    _stalling_processor(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
