"""Account opening paced by the bank's limits; suspense: late account notices, wrong payers, review."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from app.bank_inbox import suspense
from app.banks.gateway import BankRateLimited, DesignatedPayer
from app.db.models import Job, Payout, SuspenseItem, VirtualAccount
from app.deals import service as deals
from app.domain.rate_limit import IN_FLIGHT_LOOK_S, SHANGHAI, Limits, WindowState, answered, take
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from app.queue.jobs import enqueue
from app.queue.worker import run_one
from tests.factories import (
    CUSTODY_FEN,
    RESALE_FORM,
    actor,
    arrive,
    confirmed_deal,
    load_deal,
    notification,
    open_account,
    post_callback,
    virtual_account,
)
from tests.integration.test_worker_jobs import ACCOUNT, FakeBank, _funded_and_released

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def bank(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> FakeBank:
    fake = FakeBank()
    monkeypatch.setattr(rt, "gateway", lambda bank_code: fake)
    return fake


def _run_due(rt: Runtime, at: datetime) -> None:
    rt.clock = lambda: at
    while run_one(rt, "test-worker"):
        pass


def test_the_window_lets_a_send_start_a_second_after_the_answer_it_replaces_and_stops_at_the_daily_quota() -> None:
    limits = Limits(per_second=2, per_day=4)
    state = WindowState()
    assert take(state, limits, T0, "a") == take(state, limits, T0, "b") == 0.0, "two at once"
    assert take(state, limits, T0, "c") == pytest.approx(IN_FLIGHT_LOOK_S), "both in flight: look again shortly"
    answered(state, "a", T0 + timedelta(milliseconds=40))
    answered(state, "b", T0 + timedelta(milliseconds=90))
    assert take(state, limits, T0 + timedelta(milliseconds=500), "c") == pytest.approx(0.545), "a's answer + 1 s"
    assert take(state, limits, T0 + timedelta(milliseconds=1045), "c") == 0.0
    assert take(state, limits, T0 + timedelta(milliseconds=1046), "d") == pytest.approx(0.049), "b's answer + 1 s"
    assert take(state, limits, T0 + timedelta(milliseconds=1095), "d") == 0.0
    answered(state, "c", T0 + timedelta(seconds=2))
    answered(state, "d", T0 + timedelta(seconds=2))
    wait = take(state, limits, T0 + timedelta(seconds=5), "e")
    next_midnight = datetime(2026, 11, 24, tzinfo=SHANGHAI)
    assert wait == pytest.approx((next_midnight - (T0 + timedelta(seconds=5))).total_seconds()), "4 a day"
    assert take(state, limits, next_midnight, "e") == 0.0, "a new Shanghai day, a new quota"


def test_a_send_never_answered_stops_holding_its_place_after_a_minute() -> None:
    limits = Limits(per_second=1, per_day=100)
    state = WindowState()
    assert take(state, limits, T0, "lost") == 0.0
    assert take(state, limits, T0 + timedelta(seconds=30), "next") == pytest.approx(IN_FLIGHT_LOOK_S)
    assert take(state, limits, T0 + timedelta(seconds=61.005), "next") == 0.0


@given(
    per_second=st.integers(1, 6),
    gaps_ms=st.lists(st.integers(0, 400), min_size=1, max_size=60),
    latencies_ms=st.lists(st.integers(0, 300), min_size=60, max_size=60),
)
def test_the_bank_never_sees_more_than_its_limit_in_any_second(
    per_second: int, gaps_ms: list[int], latencies_ms: list[int]
) -> None:
    """Sends tried at arbitrary moments, answered after arbitrary latencies; the bank stamps each at an arbitrary
    moment between start and answer (here: its start, then its answer, alternately): never more than
    `per_second` stamps in any one-second window [t - 1 s, t]."""
    limits, state, now, stamps = Limits(per_second, 10_000), WindowState(), T0, []
    in_flight: list[tuple[datetime, str, datetime]] = []  # (answer time, ticket, start)
    for n, gap in enumerate(gaps_ms):
        now += timedelta(milliseconds=gap)
        for answer_at, ticket, started in sorted(in_flight):
            if answer_at <= now:
                answered(state, ticket, answer_at)
                stamps.append(started if len(stamps) % 2 else answer_at)
        in_flight = [f for f in in_flight if f[0] > now]
        if take(state, limits, now, f"t{n}") == 0.0:
            in_flight.append((now + timedelta(milliseconds=latencies_ms[n]), f"t{n}", now))
    for answer_at, ticket, started in in_flight:
        answered(state, ticket, answer_at)
        stamps.append(started if len(stamps) % 2 else answer_at)
    stamps.sort()
    for i, stamp in enumerate(stamps):
        assert sum(1 for other in stamps[i:] if other - stamp <= timedelta(seconds=1)) <= per_second


def accounts_waiting(rt: Runtime, count: int, now: datetime = T0) -> None:
    """Deals whose account opening at ceb is queued (created directly: these tests are about the pacing)."""
    for n in range(count):
        deal_id = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", RESALE_FORM)
        with rt.db.uow() as uow:
            account = VirtualAccount(deal_id=deal_id, bank_code="ceb", request_id=f"VA-{n}", account_name="存管")
            uow.session.add(account)
            uow.session.flush()
            enqueue(uow.session, "open_virtual_account", {"virtual_account_id": account.id}, now=now, bank_code="ceb")
            uow.commit()


def test_account_opening_never_goes_faster_than_the_bank_allows(rt: Runtime, users: dict, bank: FakeBank) -> None:
    rt.banks["ceb"] = replace(rt.banks["ceb"], open_per_second=2, open_per_day=3)
    accounts_waiting(rt, 4)
    _run_due(rt, T0)
    assert len(bank.calls) == 2, "two per second"
    with rt.db.uow() as uow:
        waiting = uow.session.scalars(
            select(Job).where(Job.status == "pending", Job.kind == "open_virtual_account")
        ).all()
        assert {(job.attempts, "限速" in (job.last_error or "")) for job in waiting} == {(0, True)}
        assert all(job.run_after > T0 for job in waiting)
    _run_due(rt, T0 + timedelta(seconds=1))
    assert len(bank.calls) == 2, "a second after the answers, plus the margin"
    _run_due(rt, T0 + timedelta(seconds=1.005))
    assert len(bank.calls) == 3, "the daily quota of three is reached"
    _run_due(rt, T0 + timedelta(hours=12))  # 22:00 in Shanghai: same day
    assert len(bank.calls) == 3
    _run_due(rt, T0 + timedelta(hours=14, seconds=1))  # past midnight in Shanghai
    assert len(bank.calls) == 4


def test_the_banks_429_defers_the_opening_without_spending_an_attempt(rt: Runtime, users: dict, bank: FakeBank) -> None:
    accounts_waiting(rt, 1)
    bank.script["open"] = [BankRateLimited("开户过快", code="CEB1029", retry_after_s=7, details={})]
    _run_due(rt, T0)
    with rt.db.uow() as uow:
        job = uow.session.scalars(select(Job)).one()
        assert (job.status, job.attempts, job.run_after) == ("pending", 0, T0 + timedelta(seconds=7))
    _run_due(rt, T0 + timedelta(seconds=7))
    assert [name for name, _ in bank.calls] == ["open", "open"]


def test_designated_payer_is_registered_and_a_stranger_is_paid_back_by_original_route(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, bank: FakeBank
) -> None:
    deal_id = confirmed_deal(rt, city="310000")  # 上海: designated payer, wrong payer returned automatically
    _run_due(rt, rt.clock())
    assert bank.payers == [DesignatedPayer(RESALE_FORM["buyer_name"], RESALE_FORM["buyer_bank_account"])]
    open_account(client, keys_dir, rt, deal_id, "6226000000000310")
    arrive(client, keys_dir, "6226000000000310", 50_00, "REF-X", designated_payer_matched=False)
    with rt.db.uow() as uow:
        item = uow.session.scalars(select(SuspenseItem)).one()
        assert (item.reason, item.status, item.payer_account) == ("wrong_payer", "returning", "6226620012345678")
        payout = uow.session.scalars(select(Payout).where(Payout.purpose == "return")).one()
        assert (payout.payee_name, payout.payee_account, payout.amount_fen) == ("张三", "6226620012345678", 50_00)
        assert LedgerRepository(uow.session).totals("suspense:ceb") == (0, 50_00, 50_00, 0), "on hold to go back"
        payout_id = payout.payout_id
    _run_due(rt, rt.clock())
    assert bank.calls[-1][0] == "submit"
    result = notification(
        "payout_result",
        payout_id=payout_id,
        status="succeeded",
        bank_reference="RT-REF",
        failure_reason=None,
    )
    assert post_callback(client, keys_dir, result)[0] == 200
    arrive(client, keys_dir, "6226000000000310", CUSTODY_FEN, "REF-BUYER", designated_payer_matched=True)
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert uow.session.scalars(select(SuspenseItem)).one().status == "returned"
        assert repo.balance("suspense:ceb") == 0 and repo.balance("bank_clearing:ceb") == CUSTODY_FEN
        assert check_ledger(uow.session).ok
    deal = load_deal(rt, deal_id)
    assert deal.state == "funded", "the buyer's own money counts, the stranger's never did"
    assert any(event.event == "wrong_payer_arrival" for event in deal.events), "on the timeline"


def test_money_that_arrives_before_account_opened_is_credited_when_the_notice_comes(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    deal_id = confirmed_deal(rt)
    arrive(client, keys_dir, "6226000000000001", CUSTODY_FEN, "REF-EARLY")
    with rt.db.uow() as uow:
        assert uow.session.scalars(select(SuspenseItem.reason)).one() == "unknown_account"
    assert load_deal(rt, deal_id).state == "awaiting_account"
    open_account(client, keys_dir, rt, deal_id, "6226000000000001")
    deal = load_deal(rt, deal_id)
    assert deal.state == "funded"
    with rt.db.uow() as uow:
        item = uow.session.scalars(select(SuspenseItem)).one()
        assert (item.status, item.deal_id) == ("matched", deal_id) and "开户通知晚于到账" in (item.resolution or "")
        repo = LedgerRepository(uow.session)
        assert repo.balance(f"custody:{deal.deal_no}") == CUSTODY_FEN and repo.balance("suspense:ceb") == 0
        assert check_ledger(uow.session).ok


def test_finance_matches_an_unknown_credit_to_a_deal_with_a_reason(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict
) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, "6226000000000002")
    arrive(client, keys_dir, "6226999999999999", 10_00, "REF-TYPO")  # the buyer mistyped the account
    item_id = suspense.list_items(rt)[0].id
    deal_no = load_deal(rt, deal_id).deal_no
    with pytest.raises(ValidationError):
        suspense.propose_match(rt, item_id, deal_no, "  ", "finance")
    suspense.propose_match(rt, item_id, deal_no, "买方电话确认，账号输错一位", "finance")
    with pytest.raises(ValidationError) as alone:
        suspense.approve_match(rt, item_id, "finance")
    assert alone.value.code == "SAME_PERSON"
    assert suspense.approve_match(rt, item_id, "finance2") == deal_no
    with pytest.raises(ValidationError) as again:
        suspense.propose_match(rt, item_id, deal_no, "重复", "finance")
    assert again.value.code == "SUSPENSE_RESOLVED"
    with rt.db.uow() as uow:
        assert LedgerRepository(uow.session).balance(f"custody:{deal_no}") == 10_00
    assert suspense.list_items(rt) == []
    assert virtual_account(rt, deal_id).designated_payer is False, "北京 does not designate payers"


def test_several_worker_threads_run_each_job_exactly_once(rt: Runtime, users: dict, bank: FakeBank) -> None:
    from app.queue.worker import run_workers

    rt.banks["ceb"] = replace(rt.banks["ceb"], open_per_second=100)
    accounts_waiting(rt, 10)
    rt.clock = lambda: T0
    assert run_workers(rt, 4, should_stop=lambda: False, burst=True) == 10
    opened = [request_id for name, request_id in bank.calls if name == "open"]
    assert sorted(opened) == sorted(f"VA-{n}" for n in range(10)), "each account requested exactly once"
    with rt.db.uow() as uow:
        openings = select(Job).where(Job.kind == "open_virtual_account")  # each also queues a later check
        assert {job.status for job in uow.session.scalars(openings)} == {"done"}


def test_suspense_commands(app: Flask, client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict) -> None:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, "6226000000000003")
    arrive(client, keys_dir, "6226999999999998", 20_00, "REF-CLI")
    runner = app.test_cli_runner()
    listing = runner.invoke(args=["suspense", "list"])
    assert listing.exit_code == 0 and "REF-CLI" in listing.output and "未知账户" in listing.output
    assert "6226620012345678" not in listing.output, "the payer's account is masked"
    item_id = suspense.list_items(rt)[0].id
    arrive(client, keys_dir, "6226999999999997", 30_00, "REF-CLI-2")  # also unknown: goes back to its sender
    (other_id,) = [item.id for item in suspense.list_items(rt) if item.bank_reference == "REF-CLI-2"]
    returned = runner.invoke(args=["suspense", "return", str(other_id), "--reason", "汇错账户", "--by", "finance"])
    assert returned.exit_code == 0 and "RT-" in returned.output, returned.output
    deal_no = load_deal(rt, deal_id).deal_no
    matched = runner.invoke(
        args=["suspense", "match", str(item_id), deal_no, "--reason", "银行来电确认", "--by", "finance"]
    )
    assert matched.exit_code == 0 and "待另一位财务人员批准" in matched.output, matched.output
    alone = runner.invoke(args=["suspense", "approve-match", str(item_id), "--by", "finance"])
    assert alone.exit_code == 1 and "SAME_PERSON" in alone.output, "the command line is no way around four eyes"
    assert "共 1 条" in runner.invoke(args=["suspense", "list"]).output
    approved = runner.invoke(args=["suspense", "approve-match", str(item_id), "--by", "finance2"])
    assert approved.exit_code == 0 and f"已匹配到 {deal_no}" in approved.output, approved.output
    assert "共 0 条" in runner.invoke(args=["suspense", "list"]).output


def test_money_arriving_after_the_deal_closed_goes_back_by_original_route(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, bank: FakeBank
) -> None:
    """A deal that has ended owes its money to nobody but the payer: a late arrival is not credited to the
    closed custody (where it would sit for good) but held in suspense and paid back where it came from."""
    deal_id = _funded_and_released(client, rt, keys_dir)
    _run_due(rt, rt.clock())
    payout_id = load_deal(rt, deal_id).payouts[0].payout_id
    paid = notification(
        "payout_result", payout_id=payout_id, bank_reference="BANK-REF-1", status="succeeded", failure_reason=None
    )
    assert post_callback(client, keys_dir, paid)[0] == 200
    assert load_deal(rt, deal_id).state == "closed"

    arrive(client, keys_dir, ACCOUNT, 12_00, "REF-LATE")
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed", "a final state stays final"
    assert deal.events[-1].event == "late_arrival" and "自动原路退回" in deal.events[-1].detail["label"]
    with rt.db.uow() as uow:
        item = uow.session.scalars(select(SuspenseItem)).one()
        assert (item.reason, item.status, item.deal_id) == ("deal_closed", "returning", deal_id)
        back = uow.session.scalars(select(Payout).where(Payout.purpose == "return")).one()
        assert (back.payee_name, back.payee_account, back.amount_fen) == ("张三", "6226620012345678", 12_00)
        repo = LedgerRepository(uow.session)
        assert repo.balance(f"custody:{deal.deal_no}") == 0, "the closed custody is not credited"
        assert repo.totals("suspense:ceb") == (0, 12_00, 12_00, 0), "on hold to go back"
        assert check_ledger(uow.session).ok
    _run_due(rt, rt.clock())
    assert bank.calls[-1][0] == "submit" and bank.calls[-1][1].payout_id == back.payout_id  # type: ignore[attr-defined]
