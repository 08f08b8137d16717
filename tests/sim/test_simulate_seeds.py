"""The seeded fault simulation (bench/simulate.py) in the test suite: 50 seeds must pass, a seed must replay
exactly, and the invariants must catch a planted double-payout bug."""

from __future__ import annotations

from typing import Any

import pytest

from app.banks.gateway import BankOutcomeUnknown
from app.queue.jobs import enqueue
from app.services import bank_jobs
from app.sim.vopr import Simulation, replay_command, run_seed

SEEDS = range(50)


def test_fifty_seeds_keep_every_invariant() -> None:
    failures = {}
    for seed in SEEDS:
        result = run_seed(seed)
        if not result.ok:
            failures[seed] = [*result.problems, f"replay: {replay_command(seed)}"]
    assert failures == {}


def test_a_seed_replays_exactly() -> None:
    first, second = Simulation(11).run(), Simulation(11).run()
    assert first.ok and second.ok
    assert len(first.trace) > 5
    assert first.trace == second.trace
    assert first.stats == second.stats


def _blind_resubmit(rt: Any, payload: dict[str, Any]) -> None:
    """A planted bug: after an unknown outcome the payout is submitted again without asking the bank."""
    request, bank_code, status = bank_jobs._load_payout(rt, payload["payout_id"])
    if status != "pending":
        return
    try:
        rt.gateway(bank_code).submit_payout(request)
    except BankOutcomeUnknown:
        with rt.db.uow() as uow:
            enqueue(uow.session, "submit_payout", {"payout_id": request.payout_id}, now=rt.clock(), delay_s=5)
            uow.commit()
        return
    with rt.db.uow() as uow:
        from sqlalchemy import select

        from app.db.models import Payout

        payout = uow.session.scalar(select(Payout).where(Payout.payout_id == request.payout_id))
        assert payout is not None
        if payout.status == "pending":
            payout.status = "submitted"
        uow.commit()


def test_invariants_catch_a_blind_payout_resubmission(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bank_jobs.HANDLERS, "submit_payout", _blind_resubmit)
    found = []
    for seed in range(40):
        found = [problem for problem in run_seed(seed).problems if problem.startswith("double payout")]
        if found:
            break
    assert found, "no seed in 0..39 noticed a payout booked twice"
