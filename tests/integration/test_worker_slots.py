"""A bank that answers slowly holds up only its own jobs: a worker process runs at most `per_bank` jobs of one
bank (and `per_kind` of one kind) at once, and its other threads take the other banks' jobs meanwhile."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from app.banks.settings import opening_slots
from app.db.models import Job
from app.platform.runtime import Runtime
from app.queue import jobs
from app.queue.slots import Full, Slots, parse_kind_limits
from app.queue.worker import run_one, run_workers
from tests.factories import confirmed_deal


def _queue(rt: Runtime, *specs: tuple[str, str | None]) -> None:
    with rt.db.uow() as uow:
        for kind, bank in specs:
            jobs.enqueue(uow.session, kind, {"bank": bank}, now=rt.clock(), bank_code=bank)
        uow.commit()


def test_while_one_banks_job_runs_the_next_claim_skips_that_bank_and_takes_another(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside bank A's running job (its slot taken, per_bank=1) the process claims again: A's second job is
    left queued, B's job and a job without a bank run."""
    slots = Slots(per_bank=1)
    order: list[str] = []

    def call_bank(rt_: Runtime, payload: dict[str, Any]) -> None:
        order.append(f"start {payload['bank']}")
        if payload["bank"] == "slow" and order.count("start slow") == 1:
            while run_one(rt_, "inner", slots=slots):  # what the other threads would do meanwhile
                pass
        order.append(f"end {payload['bank']}")

    monkeypatch.setitem(rt.jobs, "test_call_bank", call_bank)
    _queue(rt, ("test_call_bank", "slow"), ("test_call_bank", "slow"), ("test_call_bank", "other"))
    _queue(rt, ("test_call_bank", None))
    assert run_one(rt, "outer", slots=slots)
    assert order == ["start slow", "start other", "end other", "start None", "end None", "end slow"]
    with rt.db.uow() as uow:
        left = uow.session.scalars(select(Job.bank_code).where(Job.status == "pending")).all()
    assert left == ["slow"], "the slow bank's second job waits for its slot"
    assert run_one(rt, "outer", slots=slots) and order[-1] == "end slow", "the slot is given back after the job"


def test_a_kind_limit_holds_back_that_kind_only(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    slots = Slots(per_bank=5, per_kind={"test_limited": 1})
    seen: list[str] = []

    def limited(rt_: Runtime, payload: dict[str, Any]) -> None:
        seen.append("limited")
        if seen.count("limited") == 1:
            while run_one(rt_, "inner", slots=slots):
                pass

    monkeypatch.setitem(rt.jobs, "test_limited", limited)
    monkeypatch.setitem(rt.jobs, "test_free", lambda rt_, payload: seen.append("free"))
    _queue(rt, ("test_limited", "a"), ("test_limited", "b"), ("test_free", "a"))
    assert run_one(rt, "outer", slots=slots)
    assert seen == ["limited", "free"]


def test_bank_jobs_of_a_deal_name_their_bank(rt: Runtime, users: dict) -> None:
    confirmed_deal(rt)  # queues the account opening and the bank's countersignature
    with rt.db.uow() as uow:
        queued = uow.session.execute(select(Job.kind, Job.bank_code)).all()
    assert queued and all(bank == "ceb" for _kind, bank in queued), queued


def test_threads_go_on_with_other_banks_while_one_bank_hangs(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three threads, one bank hanging until the others are done: every other bank's job runs meanwhile, and
    the hanging bank never holds more than its one slot."""
    others_done = threading.Event()
    running = {"hang": 0, "max_hang": 0}
    lock = threading.Lock()
    finished: list[str] = []

    def call_bank(rt_: Runtime, payload: dict[str, Any]) -> None:
        if payload["bank"] == "hang":
            with lock:
                running["hang"] += 1
                running["max_hang"] = max(running["max_hang"], running["hang"])
            others_done.wait(timeout=30)
            with lock:
                running["hang"] -= 1
        with lock:
            finished.append(payload["bank"])
            if finished.count("fast") == 6:
                others_done.set()

    monkeypatch.setitem(rt.jobs, "test_call_bank", call_bank)
    _queue(rt, *[("test_call_bank", "hang")] * 3, *[("test_call_bank", "fast")] * 6)
    ran = run_workers(rt, 3, should_stop=lambda: False, poll_s=0.05, burst=True, per_bank=1)
    assert ran == 9 and others_done.is_set()
    assert finished[:6] == ["fast"] * 6, "every other bank's job ran while the hanging bank held its slot"
    assert running["max_hang"] == 1


@pytest.mark.parametrize("text", ["x", "a=0", "=2", "a=two"])
def test_kind_limits_are_checked(text: str) -> None:
    with pytest.raises(ValueError, match="类型=正整数"):
        parse_kind_limits(text)


def test_kind_limits_parse() -> None:
    assert parse_kind_limits(" open_virtual_account=2, submit_payout=4 ") == {
        "open_virtual_account": 2,
        "submit_payout": 4,
    }


def test_a_bank_of_its_own_limit_fills_that_many_slots_and_no_more() -> None:
    slots = Slots(per_bank=1, per_bank_of={"ceb": 3})
    for _ in range(2):
        with slots.claiming() as full:
            assert "ceb" not in full.banks
            slots.take("ceb", "open_virtual_account")
    with slots.claiming() as full:
        slots.take("pab", "open_virtual_account")
        assert "ceb" not in full.banks, "two of three"
        slots.take("ceb", "open_virtual_account")
    with slots.claiming() as full:
        assert full.banks == {"ceb", "pab"}, "ceb at its three, pab at the default one"


def test_a_banks_opening_limit_sets_how_many_of_its_sends_a_worker_keeps_in_flight(rt: Runtime) -> None:
    rt.banks["ceb"] = replace(rt.banks["ceb"], open_per_second=20)
    assert opening_slots(rt, per_bank=2)["ceb"] == 5, "20/s x 0.25 s in flight"
    rt.banks["ceb"] = replace(rt.banks["ceb"], open_per_second=5)
    assert opening_slots(rt, per_bank=2)["ceb"] == 2, "5/s needs no more than the default"


def test_a_thread_held_back_by_full_slots_wakes_when_one_is_given_back_not_at_its_timeout() -> None:
    slots = Slots(per_bank=1)
    with slots.claiming():
        slots.take("ceb", "open_virtual_account")
    full, wakeups = slots.full_now()
    assert full.banks == {"ceb"}
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(slots.wait(wakeups, 30) is None))
    waiter.start()
    slots.give_back("ceb", "open_virtual_account")
    waiter.join(timeout=10)
    assert woke == [True] and not waiter.is_alive(), "woken by the release, long before 30 s"
    assert slots.full_now()[0].banks == frozenset()


def test_one_idle_thread_watches_for_the_next_due_job_and_hands_the_watch_on() -> None:
    slots = Slots(per_bank=2)
    assert slots.watch() and not slots.watch(), "one watcher at a time"
    _, wakeups = slots.full_now()
    follower = threading.Thread(target=slots.wait, args=(wakeups, 30))
    follower.start()
    slots.unwatch()  # the watcher woke to claim: a follower is woken to take over
    follower.join(timeout=10)
    assert not follower.is_alive() and slots.watch(), "the watch is free again"


def test_the_idle_wait_looks_past_the_jobs_of_full_banks(rt: Runtime) -> None:
    now = rt.clock()
    with rt.db.uow() as uow:
        jobs.enqueue(uow.session, "test_call_bank", {}, now=now, bank_code="ceb")  # due, its bank full
        jobs.enqueue(uow.session, "test_call_bank", {}, now=now, delay_s=0.4, bank_code="pab")
        uow.commit()
        wait = jobs.wait_for_next_s(uow.session, now=now, shortest_s=0.02, longest_s=5, full=Full(frozenset({"ceb"})))
        assert wait == pytest.approx(0.4), "the next job it may take: pab's"
        assert jobs.wait_for_next_s(uow.session, now=now, shortest_s=0.02, longest_s=5) == 0.02
