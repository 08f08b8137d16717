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
"""

from __future__ import annotations

import atexit
import contextlib
import random
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.bank_inbox import receive as bank_callbacks
from app.bank_inbox import suspense
from app.banks.gateway import BankGateway
from app.banks.protocol import encode_json
from app.cities.sources import DbCitySource
from app.crypto.keys import ensure_keys
from app.db.base import Base
from app.db.ledger_models import LedgerAccount, LedgerTransfer
from app.db.models import Deal, Job, Payout, SuspenseItem, VirtualAccount
from app.db.pii import keyring
from app.db.session import Database
from app.deals import service as deals
from app.deals.timers import fire_due_timers
from app.domain import ledger
from app.domain.cities import CityCatalog
from app.domain.city_checks import checker
from app.ledger.maintenance import maintain
from app.ledger.repo import LedgerRepository, check_ledger
from app.payouts import approvals as payout_approvals
from app.payouts.status import PayoutPurpose, PayoutStatus
from app.platform.bootstrap import CITY_CONFIGS_DIR, TEMPLATES_DIR, build_registry, job_table, load_workflows
from app.platform.config import DEFAULT_BANKS, BankEndpoint
from app.platform.errors import CunguanError
from app.platform.runtime import KeyStore, Runtime
from app.queue import jobs
from app.queue.worker import _record as record
from app.queue.worker import run_one
from app.sandbox.forms import SAMPLE_FORMS
from app.tools.vopr.fake_bank import Delivery, FakeBank, Faults, ProcessDied
from app.users.service import create_user

BANK = "ceb"
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
PASSWORD = "Simulation-Only-1"
CITIES = ("110000", "310000")  # Beijing: any payer; Shanghai: designated payer, wrong payer returned
BUYER_ACCOUNT = SAMPLE_FORMS["resale_escrow"]["buyer_bank_account"]
STRANGER_ACCOUNT = "6222999900001111"
FINAL_STATES = ("closed", "cancelled")


def replay_command(seed: int) -> str:
    return f".venv/bin/python bench/simulate.py --seed {seed} --verbose"


# --- per-process set-up -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    folder: Path
    keys: KeyStore
    db_file: Path
    workflows: dict[Any, Any]


@cache
def _fast_pdf() -> bytes:
    from app.pdf.render import html_to_pdf

    return html_to_pdf("<html><body><p>仿真协议 simulation stand-in</p></body></html>")


@contextlib.contextmanager
def sim_environment(keys_folder: Path) -> Iterator[None]:
    """The PII keyring of the simulation's keys and the PDF stand-in (see the module docstring), for the
    duration of a seed only: both are process-wide, and the rest of a test session must not see them."""
    import app.agreements.service as agreements

    saved_keyring, saved_render = dict(vars(keyring)), agreements.html_to_pdf
    if hasattr(keyring, "configure_from_folder"):  # pii.key, pii.k2.key … and pii-index.key
        keyring.configure_from_folder(keys_folder)
    else:
        keyring.configure({"k1": KeyStore(keys_folder).pii_key()}, active="k1")
    agreements.html_to_pdf = lambda _html: _fast_pdf()  # type: ignore[assignment]
    try:
        yield
    finally:
        agreements.html_to_pdf = saved_render  # type: ignore[assignment]
        vars(keyring).clear()
        vars(keyring).update(saved_keyring)


@cache
def template() -> Template:
    """Keys, workflows and an empty database with the users, made once per process and copied per seed."""
    folder = Path(tempfile.mkdtemp(prefix="cunguan-vopr-", dir=_tmp_root()))
    ensure_keys(folder / "keys", [BANK])
    keys = KeyStore(folder / "keys")
    workflows = load_workflows()
    db_file = folder / "template.db"
    db = Database(f"sqlite:///{db_file}")
    Base.metadata.create_all(db.engine)
    rt = _runtime(db, keys, workflows, lambda: START)
    with sim_environment(keys.folder):
        create_user(rt, "agent", PASSWORD, "agent", "仿真经纪人")
        create_user(rt, "ops", PASSWORD, "ops", "仿真运营")
        create_user(rt, "finance", PASSWORD, "finance", "仿真财务")
    db.dispose()
    atexit.register(shutil.rmtree, folder, True)
    return Template(folder, keys, db_file, workflows)


def _tmp_root() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


class SimRuntime(Runtime):
    """The real Runtime, with the bank gateway replaced by the in-process bank."""

    sim_bank: BankGateway | None = None

    def gateway(self, bank_code: str) -> BankGateway:
        self.bank(bank_code)
        assert self.sim_bank is not None
        return self.sim_bank


def _runtime(db: Database, keys: KeyStore, workflows: dict[Any, Any], clock: Callable[[], datetime]) -> SimRuntime:
    name, per_second, per_day = DEFAULT_BANKS[BANK]  # the registry's name and contract limits
    return SimRuntime(
        db=db,
        cities=CityCatalog(CITY_CONFIGS_DIR, checker(workflows, TEMPLATES_DIR), DbCitySource(db, CITY_CONFIGS_DIR)),
        workflows=workflows,
        registry=build_registry(),
        keys=keys,
        banks={BANK: BankEndpoint(BANK, name, f"http://bank.invalid/{BANK}", per_second, per_day)},
        public_base_url="http://127.0.0.1:9",
        clock=clock,
        jobs=job_table(),
    )


# --- one seed -----------------------------------------------------------------------------------------


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


class _TooManyProblems(Exception):
    """Stop a seed that already failed badly: its trace replays it."""


class _Clock:
    """The true time (the bank's) and each platform process's skew from it, in seconds."""

    def __init__(self) -> None:
        self.now = START
        self.skew: dict[str, float] = {"web": 0.0, "worker-a": 0.0, "worker-b": 0.0}

    def of(self, process: str) -> Callable[[], datetime]:
        return lambda: self.now + timedelta(seconds=self.skew[process])


@dataclass
class _DealPlan:
    deal_id: int
    city: str
    custody_fen: int
    paid_matched_fen: int = 0  # what the buyer paid from the designated / any account


class Simulation:
    def __init__(self, seed: int, *, max_deals: int | None = None, steps: int | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.max_deals = max_deals if max_deals is not None else self.rng.randint(1, 3)
        self.steps = steps if steps is not None else self.rng.randint(40, 120)
        self.trace: list[str] = []
        self.problems: list[str] = []
        self.stats: dict[str, int] = {}
        self.plans: list[_DealPlan] = []
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
            raise _TooManyProblems

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
        self.clock = _Clock()
        self.bank = FakeBank(BANK, self.rng, lambda: self.clock.now)
        if self.storm:
            self.bank.faults = Faults(0.25, 0.3, 0.15, 0.1, 0.05, 0.4)
        base = _runtime(self.db, tpl.keys, tpl.workflows, self.clock.of("web"))
        base.sim_bank = self.bank
        self.rt_web = base
        self.rt_workers = {name: replace(base, clock=self.clock.of(name)) for name in ("worker-a", "worker-b")}
        for worker in self.rt_workers.values():
            worker.sim_bank = self.bank
        from app.db.models import User

        with self.db.uow() as uow:
            self.user_ids = {u.username: u.id for u in uow.session.scalars(select(User))}

    # --- actions ---

    def _create_deal(self) -> None:
        city = self.rng.choice(CITIES)
        custody_fen = self.rng.choice([100, self.rng.randint(101, 99_999), self.rng.randint(100_000, 300_000_000)])
        price = SAMPLE_FORMS["resale_escrow"]["price"]
        if self.rng.random() < 0.15:  # above the payout approval threshold (5,000,000 yuan): two people release it
            custody_fen, price = self.rng.randint(500_000_001, 800_000_000), "9000000"
        form = {
            **SAMPLE_FORMS["resale_escrow"],
            "price": price,
            "city_code": city,
            "product": "resale_escrow",
            "custody_amount": f"{custody_fen // 100}.{custody_fen % 100:02d}",
        }
        deal_id = deals.create_deal(self.rt_web, self._actor("agent"), city, "resale_escrow", form)
        self.plans.append(_DealPlan(deal_id, city, custody_fen))
        self._note(f"create deal {deal_id} in {city}, custody {custody_fen} fen")
        self._count("deals")

    def _plan(self, deal_id: int) -> _DealPlan:
        return next(p for p in self.plans if p.deal_id == deal_id)

    def _pay(self, deal_id: int, request_id: str, *, remainder: bool = False) -> None:
        account = self.bank.accounts.get(request_id)
        if account is None:
            return
        plan = self._plan(deal_id)
        missing = plan.custody_fen - plan.paid_matched_fen
        payer = BUYER_ACCOUNT
        if remainder:
            amount = missing
        else:
            roll = self.rng.random()
            if roll < 0.15 and account.designated_payer is not None:
                payer, amount = STRANGER_ACCOUNT, self.rng.randint(1, 50_000)
            elif roll < 0.25 or missing <= 1:
                amount = self.rng.randint(1, 10_000)  # more than asked (or a top-up of a funded deal)
            elif roll < 0.55:
                amount = self.rng.randint(1, missing - 1)  # partial
            else:
                amount = missing
        if amount <= 0:
            return
        arrival = self.bank.pay_in(account.account_no, amount, "张三" if payer == BUYER_ACCOUNT else "王五", payer)
        if arrival.matched is not False:
            plan.paid_matched_fen += amount
        self._note(f"pay {amount} fen into deal {deal_id} ({arrival.bank_reference}, payer {payer})")
        self._count("payments")

    def _deliver_one(self, delivery: Delivery) -> bool:
        """Deliver through the real receive(); True when the bank got a 200 (OK or DUPLICATE)."""
        raw = encode_json(delivery.body)
        nonce = f"{self.rng.getrandbits(128):032x}"
        try:
            body = bank_callbacks.parse_notification(raw)
            answer = bank_callbacks.receive(self.rt_web, BANK, raw, body, nonce)
        except CunguanError as error:  # the endpoint answers 4xx: a truthful bank should never see that
            self._fail(f"callback {delivery.body['type']} answered {error.code}: {error.message} {error.details!r}")
            return False
        except Exception:  # the endpoint would answer 500
            self._fail(f"callback {delivery.body['type']} raised (HTTP 500): {traceback.format_exc(limit=6)}")
            return False
        if answer not in ("OK", "DUPLICATE"):
            self._fail(f"callback answered {answer!r}")
        self._note(f"deliver {delivery.body['type']} {delivery.body['notification_id'][:8]} -> {answer}")
        self._count(f"callback_{answer.lower()}")
        return True

    def _deliver(self, healthy: bool = False) -> bool:
        due = [d for d in self.bank.outbox if d.due <= self.clock.now]
        if not due:
            return False
        delivery = self.rng.choice(due)  # out of order
        self.bank.outbox.remove(delivery)
        if not healthy and self.rng.random() < self.p_drop:
            self.bank.dropped.append(delivery)
            self._note(f"drop {delivery.body['type']} {delivery.body['notification_id'][:8]}")
            self._count("dropped")
            return True
        delivered = self._deliver_one(delivery)
        answer_lost = not healthy and self.rng.random() < self.p_answer_lost
        if not delivered or answer_lost:  # no 200 seen by the bank: it resends later
            delivery.due = self.clock.now + timedelta(seconds=self.rng.uniform(1, 60))
            self.bank.outbox.append(delivery)
            self._count("resent")
        elif not healthy and self.rng.random() < self.p_dup:
            if self.rng.random() < 0.5:  # some banks resend the same fact under a new notification id
                fresh = {**delivery.body, "notification_id": f"{self.rng.getrandbits(128):032x}"}
                self._deliver_one(Delivery(fresh, delivery.due))
                self._count("duplicated_new_id")
            else:
                self._deliver_one(delivery)
                self._count("duplicated")
        return True

    def _work(self, worker: str, healthy: bool = False) -> bool:
        rt = self.rt_workers[worker]
        if not healthy and self.rng.random() < self.p_crash:
            return self._crash(worker)
        ran = run_one(rt, worker)
        if ran:
            self._count("jobs_run")
            self._check_job_errors()
        return ran

    def _crash(self, worker: str) -> bool:
        """The worker process dies holding a job: before its bank call, right after the bank answered (before
        anything is committed), or after the job's work (nothing recorded). Or it stalls (a long GC pause, a
        frozen VM) and comes back later, after its lease expired and another worker may have run the job."""
        rt = self.rt_workers[worker]
        with rt.db.uow() as uow:
            job = jobs.claim(uow.session, f"{worker}-crashed", now=rt.clock())
            if job is None:
                return False
            uow.commit()
            job_id, kind, payload = job.id, job.kind, dict(job.payload)
        mode = self.rng.choice(["before", "mid", "after", "stall"])
        if mode == "stall":
            self.stalled.append((worker, job_id, kind, payload))
        elif mode in ("mid", "after"):
            self.bank.die_after_next_call = mode == "mid"
            try:
                rt.jobs[kind](rt, payload)
            except (CunguanError, ProcessDied):
                pass  # whatever happened, the process is gone before it records anything
            finally:
                self.bank.die_after_next_call = False
        self._note(f"{worker} {'stalls' if mode == 'stall' else 'crashes'} holding job {job_id} {kind} ({mode})")
        self._count(f"crash_{mode}")
        return True

    def _resume_stalled(self) -> None:
        """A stalled worker wakes up and finishes its job as if nothing happened (as `run_one` would)."""
        if not self.stalled:
            return
        worker, job_id, kind, payload = self.stalled.pop(self.rng.randrange(len(self.stalled)))
        rt = self.rt_workers[worker]
        outcome: tuple[str, bool] | None = None
        try:
            rt.jobs[kind](rt, payload)
        except jobs.Defer as error:
            outcome = (f"{error.code}: {error.message}", True)
        except CunguanError as error:
            outcome = (f"{error.code}: {error.message}", True)
        record(rt, job_id, outcome)
        self._note(f"{worker} wakes up and finishes job {job_id} {kind}: {outcome[0] if outcome else 'done'}")
        self._count("stalls_resumed")

    def _check_job_errors(self) -> None:
        """run_one keeps a job that raised an unexpected exception for a retry; here that is a bug found."""
        with self.rt_web.db.uow() as uow:
            for job in uow.session.scalars(select(Job).where(Job.last_error.like("Traceback%"))):
                if self.seen_tracebacks.get(job.id) != job.attempts:
                    self.seen_tracebacks[job.id] = job.attempts
                    self._fail(f"job {job.id} {job.kind} raised: {job.last_error}")

    def _maintain(self, worker: str) -> None:
        rt = self.rt_workers[worker]
        maintain(rt)
        fire_due_timers(rt)

    def _people(self, remainder: bool) -> None:
        """One person acts on one deal (or, when reconciling, on every deal that waits for a person)."""
        rows = self._deals()
        if not remainder and rows:
            rows = [self.rng.choice(rows)]
        for deal_id, state, request_id, _ in rows:
            if state == "created":
                if not remainder and self.rng.random() < 0.1:
                    deals.fire_user_event(self.rt_web, self._actor("agent"), deal_id, "cancel", ("agent",))
                    self._note(f"cancel deal {deal_id}")
                else:
                    deals.confirm_agreement(self.rt_web, self._actor("agent"), deal_id)
                    self._note(f"confirm deal {deal_id}")
            elif state in ("awaiting_account", "awaiting_funds") and request_id is not None:
                if not remainder or self._plan(deal_id).paid_matched_fen < self._plan(deal_id).custody_fen:
                    self._pay(deal_id, request_id, remainder=remainder)
            elif state == "funded":
                if not remainder and self.rng.random() < 0.3 and request_id is not None:
                    self._pay(deal_id, request_id)  # more money after it is funded
                else:
                    deals.record_title_transferred(self.rt_web, self._actor("ops"), deal_id)
                    self._note(f"title transferred on deal {deal_id}")
            elif state in ("releasing", "closed") and (remainder or self.rng.random() < 0.5):
                self._approve(deal_id)  # the release; after closing, an overpayment's refund by original route
            elif state == "payout_failed":
                deals.fire_user_event(self.rt_web, self._actor("ops"), deal_id, "retry_payout", ("ops",))
                self._note(f"retry payout of deal {deal_id}")
                self._count("payout_retries")
        if remainder:
            self._return_failed_returns()

    def _approve(self, deal_id: int) -> None:
        with self.rt_web.db.uow() as uow:
            waiting = list(
                uow.session.scalars(
                    select(Payout.payout_id).where(
                        Payout.deal_id == deal_id, Payout.status == PayoutStatus.AWAITING_APPROVAL
                    )
                )
            )
        for payout_id in waiting:
            outcome = payout_approvals.approve(self.rt_web, self._actor("finance"), payout_id)
            self._note(f"finance approves {payout_id} (released: {outcome.released})")
            self._count("approvals")

    def _return_failed_returns(self) -> None:
        with self.rt_web.db.uow() as uow:
            items = list(
                uow.session.scalars(
                    select(SuspenseItem.id).where(SuspenseItem.status == "open", SuspenseItem.deal_id.is_not(None))
                )
            )
        for item_id in items:
            suspense.return_item(self.rt_web, item_id, "仿真：原路退回", "user:finance")
            self._note(f"finance returns suspense item {item_id}")

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

    # --- invariants ---

    def check_invariants(self, final: bool) -> None:
        """During the run (every 25 steps): no payout id booked twice at the bank, `check_ledger` ok, no custody
        or suspense account negative. After reconciliation (`final`), also: no hold left open; money conserved
        (the bank clearing account and custody + suspense both equal what arrived at the bank minus what it
        paid out); every arrival reached the ledger, and each bank reference reached custody at most once;
        the platform's and the bank's payout outcomes agree and no deal's seller was paid twice; every deal is
        final and its custody balance is exactly what its buyer paid minus what was released and what arrived after
        it ended (returned by original route); every job done."""
        bank = self.bank
        for payout_id, times in bank.bookings.items():
            if times > 1:
                self._fail(f"double payout: {payout_id} booked {times} times at the bank")
        with self.rt_web.db.uow() as uow:
            session = uow.session
            report = check_ledger(session)
            for problem in report.problems:
                self._fail(f"ledger check: {problem}")
            repo = LedgerRepository(session)
            accounts = list(session.scalars(select(LedgerAccount).order_by(LedgerAccount.code)))
            held = 0
            for account in accounts:
                if account.code.startswith(("custody:", "suspense:")):
                    balance = repo.balance(account.code)
                    held += balance
                    if balance < 0:
                        self._fail(f"negative balance {balance} on {account.code}")
            if not final:
                return
            clearing_code = ledger.bank_clearing(BANK).code
            clearing = repo.balance(clearing_code) if any(a.code == clearing_code for a in accounts) else 0
            if any(a.debits_pending or a.credits_pending for a in accounts):
                self._fail("holds still open after reconciliation")
            expected = bank.arrived_fen - bank.paid_out_fen
            if clearing != expected or held != expected:
                self._fail(
                    f"money not conserved: bank holds {expected} (arrived {bank.arrived_fen}, paid out "
                    f"{bank.paid_out_fen}), clearing says {clearing}, custody+suspense hold {held}"
                )
            transfers = {t.id: t for t in session.scalars(select(LedgerTransfer))}
            codes = {a.id: a.code for a in accounts}
            for arrival in bank.arrivals:
                ref = arrival.bank_reference
                if f"arrival:{BANK}:{ref}" not in transfers:
                    self._fail(f"arrival {ref} ({arrival.amount_fen} fen) never reached the ledger")
                into_custody = [
                    t
                    for tid, t in transfers.items()
                    if tid.endswith(f":{BANK}:{ref}") and codes[t.credit_account_id].startswith("custody:")
                ]
                if len(into_custody) > 1:
                    self._fail(f"bank reference {ref} credited to custody {len(into_custody)} times")
            payouts = {p.payout_id: p for p in session.scalars(select(Payout))}
            for payout_id, at_bank in bank.payouts.items():
                ours = payouts.get(payout_id)
                if ours is None or (at_bank.status == "succeeded") != (ours.status == PayoutStatus.SUCCEEDED):
                    self._fail(f"payout {payout_id}: bank says {at_bank.status}, we say {ours and ours.status}")
            paid_per_deal: dict[int, list[str]] = {}
            for payout_id, at_bank in bank.payouts.items():
                ours = payouts.get(payout_id)
                if at_bank.status == "succeeded" and ours is not None and ours.purpose == PayoutPurpose.RELEASE:
                    paid_per_deal.setdefault(ours.deal_id, []).append(payout_id)
            for deal_id, paid in paid_per_deal.items():
                if len(paid) > 1:
                    self._fail(f"double payout: deal {deal_id} paid to the seller {len(paid)} times ({paid})")
            for payout_id, ours in payouts.items():
                if ours.status == PayoutStatus.SUCCEEDED and payout_id not in bank.payouts:
                    self._fail(f"payout {payout_id} succeeded here but the bank never booked it")
            for plan in self.plans:
                deal = session.get(Deal, plan.deal_id)
                assert deal is not None
                if deal.state not in FINAL_STATES:
                    self._fail(f"deal {deal.id} not final after reconciliation: {deal.state}")
                custody = repo.balance(ledger.deal_custody(deal.deal_no).code)
                # closed: the custody amount went to the seller, an overpayment held at closing back to its payer;
                # money arriving once the deal had ended went back to its payer from suspense, never to custody
                refunded = sum(
                    p.amount_fen
                    for p in payouts.values()
                    if p.deal_id == deal.id and p.purpose == PayoutPurpose.REFUND and p.status == PayoutStatus.SUCCEEDED
                )
                late = session.scalars(
                    select(SuspenseItem).where(SuspenseItem.deal_id == deal.id, SuspenseItem.reason == "deal_closed")
                ).all()
                if any(item.status != "returned" for item in late):
                    self._fail(f"deal {deal.id}: money that arrived after it ended was not returned")
                released = plan.custody_fen + refunded if deal.state == "closed" else 0
                returned_late = sum(item.amount_fen for item in late)
                if custody != plan.paid_matched_fen - released - returned_late:
                    self._fail(
                        f"deal {deal.id} ({deal.state}): custody {custody}, buyer paid {plan.paid_matched_fen}, "
                        f"released {released}, returned after it ended {returned_late}"
                    )
            for job in session.scalars(select(Job).where(Job.status != "done")):
                self._fail(f"job {job.id} {job.kind} left {job.status}: {job.last_error}")

    # --- run ---

    def run(self) -> SeedResult:
        started = time.perf_counter()
        random.seed(self.seed)  # the queue's backoff jitter uses the module generator
        tpl = template()
        with (
            tempfile.TemporaryDirectory(prefix="seed-", dir=_tmp_root()) as folder,
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
            except _TooManyProblems:
                pass
            except Exception:
                self._fail(f"simulation crashed: {traceback.format_exc(limit=8)}")
            finally:
                self.db.dispose()
        self.stats["bank_log_lines"] = len(self.bank.log)
        return SeedResult(self.seed, self.problems, self.stats, time.perf_counter() - started, self.trace)


def run_seed(seed: int) -> SeedResult:
    return Simulation(seed).run()
