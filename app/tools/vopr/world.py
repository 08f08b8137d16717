"""The state of one seed of the fault simulation: its random choices and fault rates, the true clock and the
processes' skews, the bank, the web and worker runtimes, the deals it made, and what it records (trace,
problems, counts)."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.db.models import Deal, User, VirtualAccount
from app.db.session import Database
from app.deals import service as deals
from app.tools.vopr.environment import BANK, START, sim_runtime, template
from app.tools.vopr.fake_bank import FakeBank, Faults

FINAL_STATES = ("closed", "cancelled", "refunded")


class TooManyProblems(Exception):
    """Stop a seed that already failed badly: its trace replays it."""


class SeedClock:
    """The true time (the bank's) and each platform process's skew from it, in seconds."""

    def __init__(self) -> None:
        self.now = START
        self.skew: dict[str, float] = {"web": 0.0, "worker-a": 0.0, "worker-b": 0.0}

    def of(self, process: str) -> Callable[[], datetime]:
        return lambda: self.now + timedelta(seconds=self.skew[process])


@dataclass
class DealPlan:
    deal_id: int
    city: str
    custody_fen: int
    paid_matched_fen: int = 0  # what the buyer paid from the designated / any account


class SeedWorld:
    """One seed's state and bookkeeping; the simulation's acts, checks and run loop build on it."""

    def __init__(self, seed: int, *, max_deals: int | None = None, steps: int | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.max_deals = max_deals if max_deals is not None else self.rng.randint(1, 3)
        self.steps = steps if steps is not None else self.rng.randint(40, 120)
        self.trace: list[str] = []
        self.problems: list[str] = []
        self.stats: dict[str, int] = {}
        self.plans: list[DealPlan] = []
        self.seen_tracebacks: dict[int, int] = {}
        self.stalled: list[tuple[str, int, str, dict[str, Any]]] = []
        # delivery faults (per delivery) and worker crashes (per worker step)
        self.p_drop = self.rng.choice([0.0, 0.05, 0.15])
        self.p_dup = self.rng.choice([0.0, 0.1, 0.2])
        self.p_answer_lost = self.rng.choice([0.0, 0.1])
        self.p_crash = self.rng.choice([0.0, 0.1, 0.25])
        self.storm = self.rng.random() < 0.2  # one seed in five: everything fails about three times as often
        if self.storm:
            self.stats["storm_seeds"] = 1
            self.p_drop, self.p_dup, self.p_answer_lost, self.p_crash = 0.3, 0.3, 0.25, 0.5

    # --- helpers ---

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1

    def _note(self, text: str) -> None:
        self.trace.append(f"[{self.clock.now:%H:%M:%S}] {text}")

    def _fail(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)
        self._note(f"PROBLEM {text}")
        if len(self.problems) >= 20:
            raise TooManyProblems

    def _deals(self) -> list[tuple[int, str, str | None, str | None]]:
        """(deal id, state, request id, account status) for every deal, in id order."""
        with self.rt_web.db.uow() as uow:
            rows = uow.session.execute(
                select(Deal.id, Deal.state, VirtualAccount.request_id, VirtualAccount.status)
                .outerjoin(VirtualAccount, VirtualAccount.deal_id == Deal.id)
                .order_by(Deal.id)
            ).all()
            return [(r[0], r[1], r[2], r[3]) for r in rows]

    def _actor(self, username: str) -> deals.Actor:
        role = {"agent": "agent", "ops": "ops", "finance": "finance"}[username]
        return deals.Actor(self.user_ids[username], username, role)

    # --- set-up ---

    def _set_up(self, folder: Path) -> None:
        tpl = template()
        db_file = folder / "sim.db"
        shutil.copyfile(tpl.db_file, db_file)
        self.db = Database(f"sqlite:///{db_file}")
        self.clock = SeedClock()
        self.bank = FakeBank(BANK, self.rng, lambda: self.clock.now, seal=tpl.bank_seal)
        if self.storm:
            self.bank.faults = Faults(0.25, 0.3, 0.15, 0.1, 0.05, 0.4)
        base = sim_runtime(self.db, tpl.keys, tpl.workflows, self.clock.of("web"))
        base.sim_bank = self.bank
        self.rt_web = base
        self.rt_workers = {name: replace(base, clock=self.clock.of(name)) for name in ("worker-a", "worker-b")}
        for worker in self.rt_workers.values():
            worker.sim_bank = self.bank
        with self.db.uow() as uow:
            self.user_ids = {u.username: u.id for u in uow.session.scalars(select(User))}
