"""A burst of account openings against the real bank simulator (its own process, its own clock and limiter):
every request accepted, none refused with 429, never more than the limit in a second of the bank's stamps, and
the window learned the bank's clock from its answers."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db.models import BankRateLimit, Job
from app.platform.runtime import Runtime
from app.queue.worker import run_workers
from tests.factories import simulated_banks_folder
from tests.integration.test_bank_pacing_and_suspense import accounts_waiting
from tests.integration.test_bank_simulator import SimulatorProcess, _start_simulator

PER_SECOND = 4
ACCOUNTS = 18


@pytest.fixture
def simulator(tmp_path: Path, keys_dir: Path) -> Iterator[SimulatorProcess]:
    running = _start_simulator(tmp_path / "pace.db", simulated_banks_folder(keys_dir))
    answer = running.http.put(f"{running.url}/sim/limits/ceb", json={"per_second": PER_SECOND, "per_day": 1000})
    assert answer.status_code == 200, answer.text
    yield running
    running.stop()


def _openings_done(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        done = select(func.count()).where(Job.kind == "open_virtual_account", Job.status == "done")
        return uow.session.scalar(done) or 0


def _bank_stamps(simulator: SimulatorProcess) -> list[float]:
    with closing(sqlite3.connect(f"file:{simulator.log_path.parent / 'pace.db'}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT requested_at FROM accounts WHERE bank_code = 'ceb' ORDER BY requested_at")
        return [float(at) for (at,) in rows.fetchall()]


def test_a_burst_of_openings_meets_no_429_from_the_simulator(
    rt: Runtime, users: dict, simulator: SimulatorProcess
) -> None:
    rt.banks["ceb"] = replace(
        rt.banks["ceb"], base_url=f"{simulator.url}/ceb", open_per_second=PER_SECOND, open_per_day=1000
    )
    rt.clock = lambda: datetime.now(UTC)
    accounts_waiting(rt, ACCOUNTS, datetime.now(UTC))
    threads = 1 if rt.db.url.startswith("sqlite") else 6
    deadline = time.monotonic() + 90
    ran = run_workers(
        rt,
        threads,
        should_stop=lambda: _openings_done(rt) >= ACCOUNTS or time.monotonic() > deadline,
        poll_s=0.05,
        per_bank=6,
    )
    assert _openings_done(rt) == ACCOUNTS and ran >= ACCOUNTS
    stamps = _bank_stamps(simulator)
    assert len(stamps) == ACCOUNTS, "each accepted once"
    assert simulator.log_path.read_text(errors="replace").count('" 429 ') == 0, "no refusal"
    assert max(sum(1 for other in stamps[i:] if other - at <= 1.0) for i, at in enumerate(stamps)) <= PER_SECOND
    with rt.db.uow() as uow:
        window = uow.session.get(BankRateLimit, "ceb")
        assert window is not None and window.offset_ms is not None, "the simulator's answers carried its stamps"
