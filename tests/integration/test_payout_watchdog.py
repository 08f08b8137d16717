"""The payout watchdog (`check_payout`): a submitted payout whose `payout_result` never comes is asked about at
the bank after PAYOUT_CHECK_DELAY_S and its answer recorded as 补单 - a failure too, which is on no statement.
Against the bank simulator over HTTP (dropped and late callbacks, refused payouts, slow settlement), and
against a scripted bank for what the simulator cannot do (a bank that never heard of the payout)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.bank_inbox.handlers import REPAIR_MARKER
from app.banks.gateway import BankRejected
from app.db.ledger_models import LedgerTransfer
from app.db.models import BankNotification, Deal, Job
from app.deals import service as deals
from app.ledger.repo import LedgerRepository, check_ledger
from app.payouts.submission import PAYOUT_CHECK_DELAY_ENV, PAYOUT_CHECK_DELAY_S, payout_check_delay_s
from app.platform.config import BankEndpoint
from app.platform.runtime import Runtime
from app.tools.banksim.operations import PAYEE_REFUSED
from tests.factories import CUSTODY_FEN, RESALE_FORM, actor, confirmed_deal, load_deal, notification, post_callback
from tests.integration.simulator_support import make_simulator, serving
from tests.integration.test_reconciliation import World
from tests.integration.test_worker_jobs import FakeBank, _funded_and_released, _jobs, _run_due

BUYER = {"payer_account": RESALE_FORM["buyer_bank_account"]}


@pytest.fixture
def world(
    app: Flask, rt: Runtime, client: FlaskClient, users: dict[str, int], tmp_path: Path, keys_dir: Path
) -> Iterator[World]:
    """The platform and the simulator served over HTTP; the platform's clock is the bank's (hand-driven)."""
    sim = make_simulator(tmp_path / "bank_sim.db", keys_dir)
    rt.clock = lambda: datetime.fromtimestamp(sim.clock.now, UTC)
    with serving(sim.client.application) as sim_url, serving(app) as platform_url:
        rt.banks["ceb"] = BankEndpoint("ceb", "中国光大银行", f"{sim_url}/ceb")
        rt.public_base_url = platform_url
        yield World(rt, sim, client, keys_dir)


def _released_deal(world: World, **faults: object) -> Deal:
    """A funded deal whose title transfer was recorded; the payout is submitted under `faults` (then cleared)."""
    deal_id = confirmed_deal(world.rt)
    world.pump()
    world.sim.pay_in("ceb", world.account_no(deal_id), CUSTODY_FEN, RESALE_FORM["buyer_name"], **BUYER)
    world.pump()
    assert load_deal(world.rt, deal_id).state == "funded"
    deals.record_title_transferred(world.rt, actor(world.rt, "ops"), deal_id)
    world.faults(**faults)
    world.pump()
    world.faults()
    deal = load_deal(world.rt, deal_id)
    assert deal.payouts[0].status == "submitted", "the bank accepted it; its result has not reached us"
    return deal


def _watchdogs(rt: Runtime) -> list[Job]:
    return [job for job in _jobs(rt) if job.kind == "check_payout"]


def _bank_payout(world: World, payout_id: str) -> dict[str, object]:
    return next(p for p in world.sim.state("ceb")["payouts"] if p["payout_id"] == payout_id)


def _transfer_count(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(LedgerTransfer)) or 0


def _custody_balance(rt: Runtime, deal_no: str) -> int:
    with rt.db.uow() as uow:
        assert check_ledger(uow.session).ok
        return LedgerRepository(uow.session).balance(f"custody:{deal_no}")


def test_failed_payout_whose_result_was_dropped_is_repaired_by_asking_the_bank(world: World) -> None:
    deal = _released_deal(world, drop=1.0, payout_failure=1.0)
    payout_id = deal.payouts[0].payout_id
    assert _bank_payout(world, payout_id)["status"] == "failed"
    assert [d["status"] for d in world.sim.deliveries("ceb") if d["type"] == "payout_result"] == ["dropped"]
    (watchdog,) = _watchdogs(world.rt)
    assert watchdog.status == "pending" and watchdog.payload["payout_id"] == payout_id
    assert (watchdog.attempts, watchdog.last_error) == (0, None), "not run yet: it waits PAYOUT_CHECK_DELAY_S"

    world.sim.clock.advance(PAYOUT_CHECK_DELAY_S - 1)
    world.pump()
    assert load_deal(world.rt, deal.id).payouts[0].status == "submitted", "not due yet"

    world.sim.clock.advance(1)
    world.pump()
    repaired = load_deal(world.rt, deal.id)
    assert repaired.state == "payout_failed"
    payout = repaired.payouts[0]
    assert (payout.status, payout.failure_reason) == ("failed", PAYEE_REFUSED)
    last = repaired.events[-1]
    assert (last.event, last.actor) == ("payout_failed", "system:worker")
    assert last.detail["marker"] == REPAIR_MARKER and last.detail["failure_reason"] == PAYEE_REFUSED
    assert [job.status for job in _watchdogs(world.rt)] == ["done"]
    assert _custody_balance(world.rt, repaired.deal_no) == CUSTODY_FEN, "a failed payout moved no money"


def test_succeeded_payout_is_repaired_once_and_the_late_callback_changes_nothing(world: World) -> None:
    late_ms = int(2 * PAYOUT_CHECK_DELAY_S * 1000)  # the bank's callback arrives after the watchdog asked
    deal = _released_deal(world, delay_ms=late_ms)
    payout_id = deal.payouts[0].payout_id
    assert _bank_payout(world, payout_id)["status"] == "succeeded"

    world.sim.clock.advance(PAYOUT_CHECK_DELAY_S)
    world.pump()
    repaired = load_deal(world.rt, deal.id)
    assert repaired.state == "closed" and repaired.payouts[0].status == "succeeded"
    succeeded = [event for event in repaired.events if event.event == "payout_succeeded"]
    assert [event.detail.get("marker") for event in succeeded] == [REPAIR_MARKER]
    assert _custody_balance(world.rt, repaired.deal_no) == 0
    transfers, events = _transfer_count(world.rt), len(repaired.events)
    (callback,) = [d for d in world.sim.deliveries("ceb") if d["type"] == "payout_result"]
    assert callback["status"] == "pending", "the bank has not sent it yet"

    world.sim.clock.advance(PAYOUT_CHECK_DELAY_S)
    world.pump()
    (callback,) = [d for d in world.sim.deliveries("ceb") if d["type"] == "payout_result"]
    assert callback["status"] == "delivered"
    with world.rt.db.uow() as uow:
        inbox = uow.session.scalar(select(BankNotification).where(BankNotification.type == "payout_result"))
        assert inbox is not None and inbox.processed_at is not None
        assert inbox.outcome == "already_final"
    after = load_deal(world.rt, deal.id)
    assert (after.state, len(after.events)) == ("closed", events)
    assert _transfer_count(world.rt) == transfers and _custody_balance(world.rt, after.deal_no) == 0


def test_payout_still_processing_is_checked_again_later_without_spending_attempts(world: World) -> None:
    world.sim.parts.operations.payout_delay_s = 1.5 * PAYOUT_CHECK_DELAY_S  # settles between two checks
    deal = _released_deal(world)
    payout_id = deal.payouts[0].payout_id
    world.faults(drop=1.0)  # the result the bank sends when it settles is lost

    world.sim.clock.advance(PAYOUT_CHECK_DELAY_S)
    world.pump()
    assert _bank_payout(world, payout_id)["status"] == "processing"
    (watchdog,) = _watchdogs(world.rt)
    assert (watchdog.status, watchdog.attempts) == ("pending", 0)
    assert "处理中" in (watchdog.last_error or "")
    assert watchdog.run_after == world.rt.clock() + timedelta(seconds=PAYOUT_CHECK_DELAY_S)
    assert load_deal(world.rt, deal.id).payouts[0].status == "submitted"

    world.sim.clock.advance(PAYOUT_CHECK_DELAY_S / 2)  # the bank settles, its callback is dropped
    world.pump()
    assert _bank_payout(world, payout_id)["status"] == "succeeded"
    assert [d["status"] for d in world.sim.deliveries("ceb") if d["type"] == "payout_result"] == ["dropped"]
    assert load_deal(world.rt, deal.id).payouts[0].status == "submitted", "the re-check is not due yet"

    world.sim.clock.advance(PAYOUT_CHECK_DELAY_S / 2)
    world.pump()
    repaired = load_deal(world.rt, deal.id)
    assert repaired.state == "closed"
    assert repaired.events[-1].detail.get("marker") == REPAIR_MARKER
    (watchdog,) = _watchdogs(world.rt)
    assert (watchdog.status, watchdog.attempts) == ("done", 1)


@pytest.fixture
def bank(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> FakeBank:
    fake = FakeBank()
    monkeypatch.setattr(rt, "gateway", lambda bank_code: fake)
    return fake


def test_payout_the_bank_never_heard_of_is_left_for_people_not_resubmitted(
    client: FlaskClient,
    rt: Runtime,
    keys_dir: Path,
    users: dict,
    bank: FakeBank,
    caplog: pytest.LogCaptureFixture,
) -> None:
    deal_id = _funded_and_released(client, rt, keys_dir)
    _run_due(rt)
    assert load_deal(rt, deal_id).payouts[0].status == "submitted"
    bank.script["query"] = [BankRejected("付款不存在", code="NOT_FOUND")]
    with caplog.at_level(logging.WARNING, logger="cunguan.bank_jobs"):
        _run_due(rt, later_s=PAYOUT_CHECK_DELAY_S)
        _run_due(rt, later_s=3 * PAYOUT_CHECK_DELAY_S)
    assert [name for name, _ in bank.calls] == ["submit", "query"], "asked once, never submitted again"
    (watchdog,) = _watchdogs(rt)
    assert watchdog.status == "dead"
    assert "PAYOUT_UNKNOWN_AT_BANK" in (watchdog.last_error or "")
    assert "银行查无此付款" in (watchdog.last_error or "")
    assert any(record.message == "submitted payout unknown to the bank" for record in caplog.records)
    deal = load_deal(rt, deal_id)
    assert deal.payouts[0].status == "submitted" and deal.state != "closed"


def test_watchdog_does_nothing_when_the_callback_came_in_time(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, bank: FakeBank
) -> None:
    deal_id = _funded_and_released(client, rt, keys_dir)
    _run_due(rt)
    payout_id = load_deal(rt, deal_id).payouts[0].payout_id
    body = notification("payout_result", payout_id=payout_id, bank_reference="BANK-REF-1", status="succeeded")
    status, _ = post_callback(client, keys_dir, body | {"failure_reason": None})
    assert status == 200 and load_deal(rt, deal_id).state == "closed"
    events = len(load_deal(rt, deal_id).events)
    _run_due(rt, later_s=PAYOUT_CHECK_DELAY_S)
    assert [name for name, _ in bank.calls] == ["submit"], "a final payout is not asked about"
    assert [job.status for job in _watchdogs(rt)] == ["done"]
    deal = load_deal(rt, deal_id)
    assert len(deal.events) == events
    assert all(event.detail.get("marker") != REPAIR_MARKER for event in deal.events)


def test_the_delay_can_be_set_in_the_environment_and_a_bad_value_is_ignored(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, bank: FakeBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PAYOUT_CHECK_DELAY_ENV, "30")
    _funded_and_released(client, rt, keys_dir)
    _run_due(rt)
    (watchdog,) = _watchdogs(rt)
    assert watchdog.run_after == rt.clock() + timedelta(seconds=30)
    _run_due(rt, later_s=30)
    assert [name for name, _ in bank.calls] == ["submit", "query"]
    for bad in ("abc", "0", "-5", "inf", "nan"):
        monkeypatch.setenv(PAYOUT_CHECK_DELAY_ENV, bad)
        assert payout_check_delay_s() == PAYOUT_CHECK_DELAY_S, bad
    monkeypatch.delenv(PAYOUT_CHECK_DELAY_ENV)
    assert payout_check_delay_s() == PAYOUT_CHECK_DELAY_S == 600
