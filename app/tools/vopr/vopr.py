"""Seeded fault simulation (after TigerBeetle's VOPR): one seed = one reproducible run of deals, bank
callbacks and worker jobs through the REAL services, with faults, then invariants.

What is real: `services.deals` (create, confirm, title transfer, retry), `bank_inbox.receive.receive`
(nonce, raw inbox, idempotent processing), the worker's `run_one` with leases and backoff, `bank_jobs`,
suspense, the ledger engine and its CHECK constraints, a SQLite database file per seed.

What is simulated:
- the bank: `FakeBank` (app/tools/vopr/fake_bank.py) replaces the HTTP gateway; it books accounts, arrivals and
  payouts (idempotent on request_id and payout_id, as protocol v1 says; it counts bookings and submissions
  per payout_id), fails payouts, times out after booking, loses requests, rate-limits, rejects, and queues its
  notifications;
- the network between bank and platform: notifications are delivered late, out of order, twice (with a
  fresh nonce, as a bank's resend, sometimes under a new notification id), with the answer lost (the bank
  resends: DUPLICATE) or dropped;
- worker crashes: a job is claimed and abandoned before its bank call, right after the bank answered (nothing
  committed), or after its work (nothing recorded), so its lease expires and another worker runs it again; or
  the worker stalls and finishes the job late, after another worker may have run it (a zombie);
- clocks: one true clock advanced by the simulator; the web process and two workers each see it with their
  own skew (changing during the run, so a process's clock can also jump backwards);
- people: agents confirm or cancel, buyers pay (partly, fully, too much, from a wrong payer in Shanghai's
  designated-payer config), ops record the title transfer and retry failed payouts, finance approves payouts
  above the threshold; one seed in five is a "storm" where everything fails about three times as often;
- **agreement PDF rendering only**: `app.agreements.service.html_to_pdf` is replaced, for the duration of a
  seed, by a stand-in returning one small PDF rendered once per process (WeasyPrint costs ~0.4 s per deal);
  the SM2 signing inside the PDF, and everything money-related, stay real.

At the end of a seed the simulator *reconciles*, as the daily statement would: the bank becomes healthy, every
dropped notification is delivered again, people do what the deals wait for (pay the remainder, record the title
transfer, retry a failed payout, return a wrong payer's money), workers run until idle. Then every deal must be
final and the invariants hold (see `check_invariants`). Replay a seed with
`.venv/bin/python bench/simulate.py --seed N --verbose`.

The parts: `environment` (per-process set-up), `world` (one seed's state), `people`, `deliveries` and `workers`
(the acts and their faults), `invariants`; this module runs the steps, reconciles and reports.
"""

from __future__ import annotations

import random
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from app.db.models import Job, SuspenseItem
from app.tools.vopr.deliveries import Deliveries
from app.tools.vopr.environment import sim_environment, template, tmp_root
from app.tools.vopr.fake_bank import Faults
from app.tools.vopr.invariants import Invariants
from app.tools.vopr.people import People
from app.tools.vopr.workers import Workers
from app.tools.vopr.world import FINAL_STATES, TooManyProblems


def replay_command(seed: int) -> str:
    return f".venv/bin/python bench/simulate.py --seed {seed} --verbose"


@dataclass
class SeedResult:
    seed: int
    problems: list[str]
    stats: dict[str, int]
    seconds: float
    trace: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Simulation(People, Deliveries, Workers, Invariants):
    """One seed: its steps, the reconciliation after them and the invariants, see the module docstring."""

    def _skew(self) -> None:
        process = self.rng.choice(list(self.clock.skew))
        self.clock.skew[process] = self.rng.choice([0.0, self.rng.uniform(-30, 30), self.rng.uniform(-120, 120)])
        self._note(f"clock of {process} skewed by {self.clock.skew[process]:+.1f} s")
        self._count("skews")

    def _advance(self) -> None:
        seconds = self.rng.choice([self.rng.uniform(0.1, 5), self.rng.uniform(5, 30), self.rng.uniform(60, 400)])
        self.clock.now += timedelta(seconds=seconds)

    def _step(self) -> None:
        roll = self.rng.random()
        if roll < 0.06 and len(self.plans) < self.max_deals:
            self._create_deal()
        elif roll < 0.30:
            self._work(self.rng.choice(list(self.rt_workers)))
        elif roll < 0.50:
            self._deliver()
        elif roll < 0.60:
            processing = self.bank.processing()
            if processing:
                self.bank.settle(self.rng.choice(processing))
        elif roll < 0.75:
            self._people(remainder=False)
        elif roll < 0.80:
            self._maintain(self.rng.choice(list(self.rt_workers)))
        elif roll < 0.82:
            self._skew()
        elif roll < 0.84:
            self._resume_stalled()
        else:
            self._advance()

    def _reconcile(self) -> None:
        """The bank is healthy now; dropped notifications come again (as the daily statement would show
        them); people do what deals wait for; workers run until idle. Until everything is final."""
        self.bank.faults = Faults.none()
        self.bank.max_delay_s = 0
        for process in self.clock.skew:
            self.clock.skew[process] = self.rng.uniform(-5, 5)
        for _round in range(40):
            while self.stalled:
                self._resume_stalled()
            self.bank.outbox.extend(self.bank.dropped)
            self.bank.dropped.clear()
            self.clock.now += timedelta(seconds=700)  # past every lease, backoff and delivery delay
            for payout in self.bank.processing():
                self.bank.settle(payout)
            while self._deliver(healthy=True):
                pass
            self._people(remainder=True)
            for _ in range(500):
                if not self._work(self.rng.choice(list(self.rt_workers)), healthy=True):
                    break
            self._maintain("worker-a")
            if self._settled():
                return
        self._fail("reconciliation did not settle within 40 rounds")

    def _settled(self) -> bool:
        if self.bank.outbox or self.bank.processing():
            return False
        with self.rt_web.db.uow() as uow:
            waiting_jobs = uow.session.scalar(select(Job.id).where(Job.status.in_(("pending", "running"))).limit(1))
            open_items = uow.session.scalar(
                select(SuspenseItem.id).where(SuspenseItem.status.in_(("open", "returning"))).limit(1)
            )
        return waiting_jobs is None and open_items is None and all(s in FINAL_STATES for _, s, _, _ in self._deals())

    # --- run ---

    def run(self) -> SeedResult:
        started = time.perf_counter()
        random.seed(self.seed)  # the queue's backoff jitter uses the module generator
        tpl = template()
        with (
            tempfile.TemporaryDirectory(prefix="seed-", dir=tmp_root()) as folder,
            sim_environment(tpl.keys.folder),
        ):
            self._set_up(Path(folder))
            try:
                self._create_deal()
                for step in range(self.steps):
                    self._step()
                    if step % 25 == 24:
                        self.check_invariants(final=False)
                self._reconcile()
                self.check_invariants(final=True)
            except TooManyProblems:
                pass
            except Exception:
                self._fail(f"simulation crashed: {traceback.format_exc(limit=8)}")
            finally:
                self.db.dispose()
        self.stats["bank_log_lines"] = len(self.bank.log)
        return SeedResult(self.seed, self.problems, self.stats, time.perf_counter() - started, self.trace)


def run_seed(seed: int) -> SeedResult:
    return Simulation(seed).run()
