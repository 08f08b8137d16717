"""The worker against a fake bank: retries with backoff, unknown outcomes queried not resent, leases."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.agreements.countersign import COUNTERSIGN_JOB
from app.banks.gateway import (
    BankOutcomeUnknown,
    BankRejected,
    BankUnavailable,
    DesignatedPayer,
    PayoutRequest,
    PayoutStatus,
)
from app.db.models import Job
from app.deals import service as deals
from app.platform.runtime import Runtime
from app.queue import jobs
from app.queue.worker import run_one
from tests.factories import CUSTODY_FEN, actor, arrive, confirmed_deal, load_deal, open_account

ACCOUNT = "6226000000000077"


@dataclass
class FakeBank:
    """Records calls; each call pops the next scripted outcome (an exception to raise, or a value)."""

    script: dict[str, list[object]] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    payers: list[DesignatedPayer | None] = field(default_factory=list)

    def _next(self, name: str, default: object) -> object:
        queue = self.script.get(name, [])
        outcome = queue.pop(0) if queue else default
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def open_virtual_account(
        self, request_id: str, account_name: str, notify_url: str, designated_payer: DesignatedPayer | None = None
    ) -> None:
        self.calls.append(("open", request_id))
        self.payers.append(designated_payer)
        self._next("open", None)

    def request_signature(self, request_id: str, document_sm3: bytes, purpose: str) -> bytes:
        raise BankRejected("本测试的银行不签章", code="NOT_SIGNING")

    def submit_payout(self, payout: PayoutRequest) -> str:
        self.calls.append(("submit", payout))
        return str(self._next("submit", "BANK-REF-1"))

    def query_payout(self, payout_id: str) -> PayoutStatus:
        self.calls.append(("query", payout_id))
        return self._next("query", PayoutStatus(payout_id, "processing", "BANK-REF-1", None))  # type: ignore[return-value]


@pytest.fixture
def bank(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> FakeBank:
    fake = FakeBank()
    monkeypatch.setattr(rt, "gateway", lambda bank_code: fake)
    return fake


def _jobs(rt: Runtime) -> list[Job]:
    """The account and payout jobs (the bank's countersignature, queued with them, has its own tests)."""
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(Job).where(Job.kind != COUNTERSIGN_JOB).order_by(Job.id)))


def _run_due(rt: Runtime, later_s: float = 0) -> None:
    """Run every job due now (or `later_s` from now), like a worker would."""
    base = rt.clock()
    rt.clock = lambda: base + timedelta(seconds=later_s)
    while run_one(rt, "test-worker"):
        pass


def _funded_and_released(client: FlaskClient, rt: Runtime, keys_dir: Path) -> int:
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    arrive(client, keys_dir, ACCOUNT, CUSTODY_FEN, "REF-W")
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    return deal_id


def test_open_account_retries_with_backoff_when_bank_unreachable(rt: Runtime, users: dict, bank: FakeBank) -> None:
    confirmed_deal(rt)
    bank.script["open"] = [BankUnavailable("连接被拒绝")]
    _run_due(rt)
    job = _jobs(rt)[0]
    assert (job.status, job.attempts) == ("pending", 1)
    assert job.run_after > rt.clock() and "连接被拒绝" in (job.last_error or "")
    _run_due(rt, later_s=10)
    job = _jobs(rt)[0]
    assert (job.status, job.attempts) == ("done", 2)
    assert [name for name, _ in bank.calls] == ["open", "open"], "the same request id is sent again"
    assert bank.calls[0][1] == bank.calls[1][1]


def test_unknown_payout_outcome_is_queried_never_resubmitted(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, bank: FakeBank
) -> None:
    deal_id = _funded_and_released(client, rt, keys_dir)
    bank.script["submit"] = [BankOutcomeUnknown("应答超时")]
    payout_id = load_deal(rt, deal_id).payouts[0].payout_id
    bank.script["query"] = [
        PayoutStatus(payout_id, "processing", "BANK-REF-1", None),
        PayoutStatus(payout_id, "succeeded", "BANK-REF-1", None),
    ]
    _run_due(rt)
    assert [job.kind for job in _jobs(rt)] == ["open_virtual_account", "submit_payout", "query_payout"]
    _run_due(rt, later_s=10)
    assert load_deal(rt, deal_id).payouts[0].status == "submitted", "the bank has it: it is not queried again"
    assert [job.kind for job in _jobs(rt)][-1] == "check_payout", "the watchdog asks later"
    for later in (60, 600):
        _run_due(rt, later_s=later)
    assert [name for name, _ in bank.calls] == ["submit", "query", "query"], "opened by callback: no open call"
    deal = load_deal(rt, deal_id)
    assert deal.state == "closed"
    assert deal.events[-1].actor == "system:worker"
    assert all(job.status == "done" for job in _jobs(rt))


def test_payout_the_bank_never_received_is_submitted_again(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, bank: FakeBank
) -> None:
    _funded_and_released(client, rt, keys_dir)
    bank.script["submit"] = [BankOutcomeUnknown("连接中断")]
    bank.script["query"] = [BankRejected("付款不存在", code="NOT_FOUND")]
    for later in (0, 10, 20):
        _run_due(rt, later_s=later)
    assert [name for name, _ in bank.calls] == ["submit", "query", "submit"]


def test_rejected_payout_fails_the_release(
    client: FlaskClient, rt: Runtime, keys_dir: Path, users: dict, bank: FakeBank
) -> None:
    deal_id = _funded_and_released(client, rt, keys_dir)
    bank.script["submit"] = [BankRejected("收款账户无效", code="MALFORMED")]
    _run_due(rt)
    deal = load_deal(rt, deal_id)
    assert deal.state == "payout_failed"
    assert deal.payouts[0].status == "failed" and "收款账户无效" in (deal.payouts[0].failure_reason or "")


def test_a_dead_workers_job_is_taken_over_after_its_lease(rt: Runtime, users: dict) -> None:
    confirmed_deal(rt)  # queues the account opening and the bank's countersignature
    now = rt.clock()
    with rt.db.uow() as uow:
        for _ in range(2):
            assert jobs.claim(uow.session, "worker-that-dies", now=now, lease_s=60) is not None
        uow.commit()
    with rt.db.uow() as uow:
        assert jobs.claim(uow.session, "other", now=now + timedelta(seconds=30)) is None, "lease still held"
        taken = jobs.claim(uow.session, "other", now=now + timedelta(seconds=61))
        assert taken is not None and taken.locked_by == "other" and taken.attempts == 2


def test_backoff_grows_and_is_capped() -> None:
    import random

    rng = random.Random(7)
    ceilings = [jobs.backoff_s(attempt, rng) for attempt in range(1, 15)]
    assert all(1.0 <= value <= jobs.BACKOFF_CAP_S for value in ceilings)
    assert max(ceilings[:3]) <= 8.0 < max(ceilings[8:])


def test_claiming_reads_an_index_in_order_without_scanning_or_sorting(rt: Runtime) -> None:
    """The claim's two queries are each one range read of an index in their order: no table scan and no
    sort, whatever the number of jobs queued (bench/jobs.py measures it at 1,000 and 100,000)."""
    with rt.db.uow() as uow:
        connection = uow.session.connection()
        postgres = connection.dialect.name == "postgresql"
        if postgres:  # the planner would scan a table this small; forbid it to see whether an index can serve
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for (_due, query), index in zip(
            jobs.claim_queries(rt.clock()), ("ix_jobs_status_locked_until", "ix_jobs_status_run_after"), strict=True
        ):
            compiled = query.compile(dialect=connection.dialect)
            params = (
                tuple(compiled.params[name] for name in compiled.positiontup or ())
                if compiled.positional
                else compiled.params
            )
            explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            plan = "\n".join(str(row[-1]) for row in connection.exec_driver_sql(explain + str(compiled), params))
            assert index in plan, plan
            assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan


def test_an_idle_worker_sleeps_until_the_next_job_falls_due(rt: Runtime) -> None:
    """A job deferred to a bank's next free place starts when it falls due, not up to a poll later."""
    now = rt.clock()

    def wait_s() -> float:
        with rt.db.uow() as uow:
            return jobs.wait_for_next_s(uow.session, now=now, shortest_s=0.02, longest_s=0.5)

    assert wait_s() == 0.5, "nothing queued: the longest sleep"
    with rt.db.uow() as uow:
        jobs.enqueue(uow.session, "open_virtual_account", {"virtual_account_id": 1}, now=now, delay_s=0.3)
        jobs.enqueue(uow.session, "open_virtual_account", {"virtual_account_id": 2}, now=now, delay_s=5.0)
        uow.commit()
    assert wait_s() == pytest.approx(0.3, abs=0.001)
    with rt.db.uow() as uow:
        jobs.enqueue(uow.session, "open_virtual_account", {"virtual_account_id": 3}, now=now - timedelta(seconds=1))
        uow.commit()
    assert wait_s() == 0.02, "one is due but was not taken (a full bank slot): look again soon, never spin"
