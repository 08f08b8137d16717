"""The chaos run shared by `tests/e2e/test_chaos.py` (a few hundred deals, in `make test`) and `bench/chaos.py`
(thousands): resale deals on three banks through the real platform while the bank simulator drops, duplicates,
reorders and delays notifications and times out payout answers; two workers, one killed with SIGKILL mid-run
and restarted; then reconciliation of every bank and day until every deal is final.

What is real: the web app receiving the simulator's signed callbacks, two `flask worker` processes (leases,
retries, queries), the bank simulator (its own process: accounts, arrivals, payouts, statements, faults), the
ledger, the workflows, `flask city simulate`, `flask reconcile` and `flask ledger check`.

The one shortcut: agreements. Each one renders and signs a real PDF (~0.5 s), which several hundred deals cannot
afford in a test, so the driver confirms deals with `SignOnce` (app/sandbox/harness.py, what the
simulation sandbox uses): the first confirmation renders and signs one real agreement, every later deal gets
its own agreement row carrying a copy of that signed file. Everything after the agreement is untouched.

The people are played by this process: agents create and confirm deals (services, in-process, several at once),
buyers pay in through the simulator's `/sim/pay` once the platform shows the deal's account number (one payment,
or two parts), ops record the title transfer once a deal is funded. The phases overlap as in a day of business:
buyers pay into the first accounts while agents still create deals, and the icbc city is simulated and
published (`flask city simulate` in its own process) while the other cities' deals are created. Finance
reconciles every bank and day from the console (the service its page calls) whenever nothing is in flight;
the closing round, every bank and day, is `flask reconcile`.

Sizing (measured per phase: `ChaosReport.phases`, CPU per process: `ChaosReport.cpu_seconds`, the queueing of
callbacks at the bank: `figures`): see `Tuning` for what differs between SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from sqlalchemy import Engine, create_engine, func, select

from app import create_app
from app.bank_inbox import reconciliation
from app.cities import publishing
from app.cities.launches import set_live
from app.db.ledger_models import LedgerTransfer
from app.db.models import BankNotification, Deal, DealEvent, Job, Payout, VirtualAccount
from app.db.reconciliation_models import ReconciliationItem
from app.deals import service as deals
from app.deals.service import Actor
from app.deals.vocabulary import build_vocabulary
from app.platform.config import BankEndpoint, Config
from app.platform.runtime import Runtime
from app.sandbox.harness import SignOnce
from app.tools.banksim.banks import SIMULATED_BANKS
from app.tools.banksim.statements import BANK_TIMEZONE
from app.tools.vopr.invariants import audit_problems, fund_safety_problems
from app.users.service import create_user
from tests.e2e.stack import FLASK, Stack, wait_until

# city -> the bank its resale escrow uses. 110000 (ceb) and 440300 (pab) ship with the code; the icbc city is
# a configuration this run publishes (see ICBC_CITY), as ops would open a city.
CITY_BANKS = {"110000": "ceb", "320100": "icbc", "440300": "pab"}
ICBC_CITY = {
    "extends": "_virtual",
    "admin_code": "320100",
    "name": "南京",
    "status": "live",
    "products": {
        "resale_escrow": {"banks": ["icbc"]},
        **{
            product: None
            for product in (
                "gov_escrow",
                "rent_custody",
                "provident_fund_rent",
                "renovation_escrow",
                "intent_deposit",
                "guarantee_release",
            )
        },
    },
}
PASSWORD = "chaos-horse-battery-9"
BASE_FORM = {
    "product": "resale_escrow",
    "contract_signed_on": "2026-11-20",
    "contract_buyer_name": "张三",
    "contract_seller_name": "李四",
    "contract_property_address": "示例市示例区示例路1号1单元101",
    "payment_method": "全款",
    "buyer_name": "张三",
    "buyer_id_number": "11010519491231002X",
    "buyer_bank_name": "中国光大银行",
    "buyer_bank_account": "6226620012345678",
    "seller_name": "李四",
    "seller_id_number": "110101198001010053",
    "seller_bank_name": "中国工商银行",
    "seller_bank_account": "6222020200112233445",
    "property_address": "示例市示例区示例路1号1单元101",
    "certificate_no": "示(2024)不动产权第0001234号",
}


@dataclass(frozen=True)
class ChaosPlan:
    """Sizes and fault rates of one run; the same seed gives the same deals, amounts and fault draws."""

    deals: int = 240
    seed: int = 20261120
    drop: float = 0.05
    duplicate: float = 0.1
    reorder: bool = True
    payout_timeout: float = 0.08
    error_5xx: float = 0.02
    timeout_hold_ms: int = 300  # the simulator answers 504 after this: an unknown outcome, to be queried
    split_share: float = 0.3  # deals whose buyer pays in two parts
    open_per_second: int = 40  # raised from the banks' 20/10/5 for the run (platform pacing and simulator alike)
    lease_s: float = 2.0  # a killed worker's jobs are due again this soon
    kill_after_share: float = 0.3  # SIGKILL a worker once this share of the deals' payouts reached the bank
    deadline_s: float = 600.0


@dataclass
class ChaosReport:
    plan: ChaosPlan
    seconds: float = 0.0
    reconcile_rounds: int = 0
    killed_at_payouts: int = -1
    states: Counter[str] = field(default_factory=Counter)
    figures: dict[str, int] = field(default_factory=dict)
    reconcile_output: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Tuning:
    """How the run is paced per database (measured on the shared 2-core machine, see bench/chaos.py)."""

    agents: int  # agents creating deals at once
    deliveries: int  # callbacks the simulator sends at once (`serve --deliveries`)
    worker_poll_s: float  # `flask worker --poll`: an idle worker's sleep between looks at the queue
    worker_threads: int  # `flask worker --concurrency` of each of the two workers (SQLite: always 1)


# PostgreSQL overlaps round trips and commits: several agents, eight callbacks in flight. SQLite has one writer
# (every platform transaction begins IMMEDIATE and waits in SQLite's sleeping busy handler): more writers at
# once only queue longer, and an idle worker's look at the queue takes the write lock too.
TUNING_POSTGRESQL = Tuning(agents=4, deliveries=8, worker_poll_s=0.05, worker_threads=1)
TUNING_SQLITE = Tuning(agents=2, deliveries=1, worker_poll_s=0.2, worker_threads=1)


class ChaosStack(Stack):
    """Simulator, web app and two workers (`worker-a`, `worker-b`), every simulated bank configured."""

    def __init__(self, workdir: Path, database_url: str, keys_dir: Path, plan: ChaosPlan) -> None:
        super().__init__(workdir, database_url, keys_dir)
        self.plan = plan
        self.worker_starts = 0
        self.cpu_of_killed: dict[str, float] = {}

    def env(self) -> dict[str, str]:
        base = super().env()
        for code in SIMULATED_BANKS:
            base[f"CUNGUAN_BANK_{code.upper()}_URL"] = f"{self.sim_url}/{code}"
            base[f"CUNGUAN_BANK_{code.upper()}_OPEN_PER_SECOND"] = str(self.plan.open_per_second)
        return base

    def config(self) -> Config:
        """The same settings as the processes', for this process's own runtime (the people and the checks)."""
        return Config(
            instance_path=self.workdir / "instance",
            database_url=self.database_url,
            keys_dir=self.keys_dir,
            secret_key="e2e-secret",
            public_base_url=self.web_url,
            banks={
                code: BankEndpoint(code, code, f"{self.sim_url}/{code}", self.plan.open_per_second)
                for code in SIMULATED_BANKS
            },
        )

    def start_simulator(self) -> None:
        command = [sys.executable, "-m", "app.tools.banksim", "serve", "--port", str(self.sim_port)]
        command += ["--db", str(self.sim_db), "--keys-dir", str(self.bank_keys_dir)]
        command += ["--open-delay", "0.05", "--payout-delay", "0.05", "--deliveries", str(self.tuning.deliveries)]
        self.spawn("simulator", command)
        wait_until(lambda: self.sim_control("GET", "state").ok, what="bank simulator")

    def start_platform(self) -> None:
        self.spawn("web", [*FLASK, "run", "--port", str(self.web_port), "--no-debugger", "--no-reload"])
        wait_until(lambda: requests.get(f"{self.web_url}/healthz", timeout=1).ok, what="web app")
        for name in ("worker-a", "worker-b"):
            self.start_worker(name)

    def start_worker(self, name: str) -> None:
        self.worker_starts += 1
        log_name = f"{name}-{self.worker_starts}"
        pace = ["--poll", str(self.tuning.worker_poll_s), "--concurrency", str(self.tuning.worker_threads)]
        self.spawn(log_name, [*FLASK, "worker", *pace, "--lease", str(self.plan.lease_s)])

    def kill_worker(self, name: str) -> None:
        """SIGKILL the newest process of worker `name`: no handler runs, its claimed jobs keep their lease."""
        log_name, process = next((log, p) for log, p in reversed(self.processes) if log.startswith(f"{name}-"))
        self.cpu_of_killed[log_name] = self.cpu_seconds()[log_name]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    @property
    def tuning(self) -> Tuning:
        return TUNING_POSTGRESQL if self.database_url.startswith("postgresql") else TUNING_SQLITE

    @cached_property
    def reader(self) -> Engine:
        """The people's view of the platform's database: plain reads, which on SQLite take no write lock (the
        platform's own sessions begin every transaction IMMEDIATE) and so never make a callback wait."""
        return create_engine(self.database_url)

    def stop(self) -> None:
        super().stop()
        if "reader" in self.__dict__:
            self.reader.dispose()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by each process still running (Linux /proc), with the killed
        worker's at its death, this process's ("people") and its finished commands' (`flask reconcile`...)."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = dict(self.cpu_of_killed)
        for name, process in self.processes:
            try:
                stat = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used[name] = round((int(stat[11]) + int(stat[12])) / ticks, 1)
        own = os.times()
        used["people (this process)"] = round(own.user + own.system, 1)
        used["flask commands"] = round(own.children_user + own.children_system - sum(self.cpu_of_killed.values()), 1)
        return used


def _sim(stack: ChaosStack, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = stack.sim_control(method, path, payload)
    assert answer.status_code == 200, answer.text
    return answer.json()


class People:
    """Agents, buyers, ops: act on what the platform's database shows, as its pages would show it."""

    def __init__(self, rt: Runtime, stack: ChaosStack, plan: ChaosPlan, actors: dict[str, Actor]) -> None:
        self.rt = rt
        self.stack = stack
        self.plan = plan
        self.actors = actors
        self.rng = random.Random(plan.seed)
        self.installments: dict[int, list[int]] = {}
        self.paid: set[int] = set()
        self.titled: set[int] = set()
        self.opened = 0

    def deal_forms(self) -> list[tuple[str, dict[str, str], list[int]]]:
        """Every deal's city, intake form and buyer installments (fen), cities in turn; amounts seeded."""
        cities = list(CITY_BANKS)
        planned = []
        for number in range(self.plan.deals):
            custody_fen = self.rng.randrange(5_000_000, 400_000_000)
            form = {
                **BASE_FORM,
                "city_code": cities[number % len(cities)],
                "contract_no": f"CHAOS-{number:06d}",
                "price": f"{(custody_fen + 100_000_000) // 100}",
                "custody_amount": f"{custody_fen // 100}.{custody_fen % 100:02d}",
            }
            if self.rng.random() < self.plan.split_share:
                first = self.rng.randrange(1, custody_fen)
                installments = [first, custody_fen - first]
            else:
                installments = [custody_fen]
            planned.append((form["city_code"], form, installments))
        return planned

    def open_deal(self, city_code: str, form: dict[str, str], installments: list[int]) -> int:
        """An agent creates the deal and confirms its agreement (which asks the bank for an account)."""
        deal_id = deals.create_deal(self.rt, self.actors["agent"], city_code, "resale_escrow", form)
        self.installments[deal_id] = installments  # known before the account can open
        deals.confirm_agreement(self.rt, self.actors["agent"], deal_id)
        return deal_id

    def act(self) -> int:
        """Pay into opened accounts, record title transfers on funded deals; returns how many acts."""
        with self.stack.reader.connect() as connection:
            rows = connection.execute(
                select(Deal.id, Deal.state, Deal.bank_code, VirtualAccount.account_no).join(
                    VirtualAccount, VirtualAccount.deal_id == Deal.id
                )
            ).all()
        acts = 0
        self.opened = sum(1 for *_, account_no in rows if account_no)
        for deal_id, state, bank_code, account_no in rows:
            if state == "awaiting_funds" and account_no and deal_id not in self.paid:
                for amount_fen in self.installments[deal_id]:
                    self._pay(bank_code, account_no, amount_fen)
                self.paid.add(deal_id)
                acts += 1
            elif state == "funded" and deal_id not in self.titled:
                deals.record_title_transferred(self.rt, self.actors["ops"], deal_id)
                self.titled.add(deal_id)
                acts += 1
        return acts

    def _pay(self, bank_code: str, account_no: str, amount_fen: int) -> None:
        payload = {
            "bank": bank_code,
            "account_no": account_no,
            "amount_fen": amount_fen,
            "payer_name": BASE_FORM["buyer_name"],
            "payer_account": BASE_FORM["buyer_bank_account"],
        }
        _sim(self.stack, "POST", "pay", payload)


def prepare(stack: ChaosStack, flask_app: Flask) -> tuple[Runtime, dict[str, Actor]]:
    """Schema and the people (agent, ops, reviewer, finance)."""
    stack.flask("db", "upgrade")
    rt: Runtime = flask_app.extensions["cunguan.runtime"]
    actors = {}
    for role in ("agent", "ops", "reviewer", "finance"):
        user = create_user(rt, role, PASSWORD, role, f"混沌{role}")
        actors[role] = Actor(user.id, role, role)
    return rt, actors


def publish_icbc_city(stack: ChaosStack, rt: Runtime) -> None:
    """Ops drafts and submits the icbc city, `flask city simulate` runs its paths in a sandbox (its own
    process: it runs beside the other cities' deals being created), another person approves and publishes."""
    content = json.dumps(ICBC_CITY, ensure_ascii=False, indent=2)
    publishing.save_draft(rt, "320100", content, "ops")
    simulated = stack.flask("city", "simulate", "320100", "--by", "ops", check=False)
    assert simulated.returncode == 0 and "✓ 仿真通过" in simulated.stdout, simulated.stdout + simulated.stderr
    publishing.submit(rt, "320100", "ops")
    publishing.review(rt, "320100", "reviewer", "混沌测试城市", approve=True)
    publishing.publish(rt, "320100", "reviewer")
    set_live(rt, "320100", "reviewer", live=True)


def set_faults(stack: ChaosStack, plan: ChaosPlan) -> None:
    for number, code in enumerate(sorted(set(CITY_BANKS.values()))):
        settings = {
            "drop": plan.drop,
            "duplicate": plan.duplicate,
            "reorder": plan.reorder,
            "payout_timeout": plan.payout_timeout,
            "error_5xx": plan.error_5xx,
            "timeout_hold_ms": plan.timeout_hold_ms,
            "seed": plan.seed + number,
        }
        _sim(stack, "PUT", f"faults/{code}", settings)
        _sim(stack, "PUT", f"limits/{code}", {"per_second": plan.open_per_second, "per_day": 100_000})


def _busy(stack: ChaosStack) -> bool:
    """Anything in flight: jobs waiting (even later ones: a query, an account check) or running, callbacks
    stored and not yet processed, or at the bank accounts still opening, payouts still being carried out and
    callbacks still to deliver. Reconciling while something is in flight would repair what is not lost."""
    with stack.reader.connect() as connection:
        jobs = connection.scalar(select(func.count()).where(Job.status.in_(("pending", "running"))))
        unprocessed = connection.scalar(
            select(func.count()).where(BankNotification.processed_at.is_(None), BankNotification.outcome.is_(None))
        )
    with stack.sim_rows() as sim:
        at_bank = sim.execute(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE status = 'pending')"
            " + (SELECT COUNT(*) FROM accounts WHERE status = 'opening')"
            " + (SELECT COUNT(*) FROM payouts WHERE status = 'processing')"
        ).fetchone()[0]
    return bool(jobs or unprocessed or at_bank)


def _payouts_at_bank(stack: ChaosStack) -> int:
    with stack.sim_rows() as sim:
        return int(sim.execute("SELECT COUNT(*) FROM payouts").fetchone()[0])


def _states(stack: ChaosStack) -> Counter[str]:
    with stack.reader.connect() as connection:
        return Counter(dict(connection.execute(select(Deal.state, func.count()).group_by(Deal.state)).all()))


def bank_days(stack: ChaosStack) -> dict[str, list[date]]:
    """Every (bank, Asia/Shanghai day) on which the simulator booked an arrival or a payout."""
    with stack.sim_rows() as sim:
        rows = sim.execute(
            "SELECT bank_code, arrived_at FROM arrivals"
            " UNION ALL SELECT bank_code, finished_at FROM payouts WHERE finished_at IS NOT NULL"
        ).fetchall()
    days: dict[str, set[date]] = {code: set() for code in set(CITY_BANKS.values())}
    for bank_code, timestamp in rows:
        days[bank_code].add(datetime.fromtimestamp(timestamp, BANK_TIMEZONE).date())
    return {code: sorted(found) for code, found in days.items()}


def reconcile_from_console(stack: ChaosStack, rt: Runtime, finance: Actor) -> list[str]:
    """Finance reconciles every bank and day from the console (the service its 对账 page calls; no process
    to start, so it can be done as often as the run needs). Returns one line per run."""
    today = datetime.now(BANK_TIMEZONE).date()
    lines = []
    for bank_code, days in sorted(bank_days(stack).items()):
        for day in days:
            run_id = reconciliation.reconcile(rt, bank_code, day, allow_incomplete=day >= today, actor=finance.label)
            run = reconciliation.load_run(rt, run_id)
            lines.append(f"对账 #{run.id} {bank_code} {day.isoformat()}: {run.counts} 未解决 {run.unresolved}")
    return lines


def reconcile_all(stack: ChaosStack) -> list[str]:
    """`flask reconcile` for every bank and day (today's statement is still open: --allow-incomplete)."""
    today = datetime.now(BANK_TIMEZONE).date()
    runs = []
    for bank_code, days in sorted(bank_days(stack).items()):  # the banks at once, each bank's days in turn
        args = [["reconcile", "--bank", bank_code, "--date", day.isoformat()] for day in days]
        runs.append(
            [[*a, *(["--allow-incomplete"] if day >= today else [])] for a, day in zip(args, days, strict=True)]
        )
    with ThreadPoolExecutor(len(runs)) as pool:
        results = pool.map(lambda commands: [stack.flask(*c, check=False) for c in commands], runs)
        return [
            f"$ flask {' '.join(command)} (exit {result.returncode})\n{result.stdout}{result.stderr}"
            for commands, outcome in zip(runs, results, strict=True)
            for command, result in zip(commands, outcome, strict=True)
        ]


POLL_S = 0.1  # how often the people look at the platform
QUIET_S = 0.3  # nothing in flight anywhere for this long: what is left waits for 对账


class Phases:
    """When each milestone of the run was reached (seconds since the platform was up) and how long the
    timed steps took; logged as they happen, kept in the report."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.started = time.monotonic()
        self.seconds: dict[str, float] = {}

    def reached(self, name: str) -> None:
        if name not in self.seconds:
            self.seconds[name] = round(time.monotonic() - self.started, 1)
            self.log(f"{name}: {self.seconds[name]} s")

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        begun = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.monotonic() - begun, 1)


def create_deals(stack: ChaosStack, rt: Runtime, people: People, phases: Phases, stop: threading.Event) -> None:
    """The agents, several at once (each deal its own transactions, as from their browsers): the ceb and pab
    cities' deals while the icbc city is being published, then icbc's."""
    planned = people.deal_forms()

    def open_deal(deal: tuple[str, dict[str, str], list[int]]) -> None:
        if not stop.is_set():
            people.open_deal(*deal)

    agents = stack.tuning.agents
    icbc = ICBC_CITY["admin_code"]
    with ThreadPoolExecutor(agents + 1) as pool:
        publication = pool.submit(phases.timed("icbc city published (in parallel)")(publish_icbc_city), stack, rt)
        others = [deal for deal in planned if deal[0] != icbc]
        open_deal(others[0])  # the one real agreement is rendered and signed before the agents work at once
        list(pool.map(open_deal, others[1:]))
        publication.result()
        list(pool.map(open_deal, [deal for deal in planned if deal[0] == icbc]))
    phases.reached("deals created and confirmed")


def run_chaos(stack: ChaosStack, flask_app: Flask, plan: ChaosPlan, log: Any = print) -> ChaosReport:
    """Run the whole scenario; returns the report. Raises AssertionError when deals do not all finish.

    Deals are created (agents in threads) while the people already pay into the first opened accounts and the
    workers carry the first payouts: the phases overlap as they would in a day of business."""
    report = ChaosReport(plan)
    setup = time.monotonic()
    stack.start_simulator()
    rt, actors = prepare(stack, flask_app)
    set_faults(stack, plan)
    stack.start_platform()
    phases = Phases(log)
    phases.seconds["setup (before the run)"] = round(time.monotonic() - setup, 1)
    people = People(rt, stack, plan, actors)
    sign_once = SignOnce()
    stop = threading.Event()
    rt.registry, platform_vocabulary = build_vocabulary(sign_once), rt.registry  # this process signs once
    try:
        with ThreadPoolExecutor(1) as agents:
            creation = agents.submit(create_deals, stack, rt, people, phases, stop)
            try:
                _drive(stack, rt, people, report, phases, creation)
            finally:
                stop.set()
    finally:
        rt.registry = platform_vocabulary
    assert sign_once.rendered == 1, sign_once.rendered
    if report.killed_at_payouts < 0:
        raise AssertionError("the run ended before a worker was killed")
    report.reconcile_rounds += 1  # the closing run: every bank and day, everything must match now
    with phases.timed("closing reconciliation"):
        report.reconcile_output += reconcile_all(stack)
    report.seconds = time.monotonic() - phases.started
    report.states = _states(stack)
    report.figures = figures(stack, rt)
    report.phases = phases.seconds
    report.cpu_seconds = stack.cpu_seconds()
    return report


def _drive(
    stack: ChaosStack, rt: Runtime, people: People, report: ChaosReport, phases: Phases, creation: Future[None]
) -> None:
    """The people act on what the platform shows; finance reconciles whenever nothing is in flight."""
    plan = report.plan
    quiet_since: float | None = None
    while True:
        now = time.monotonic()
        if now - phases.started > plan.deadline_s:
            raise AssertionError(f"deals not final after {plan.deadline_s} s: {dict(_states(stack))}")
        if creation.done():
            creation.result()  # an agent's error ends the run
        if report.killed_at_payouts < 0 and _payouts_at_bank(stack) >= plan.kill_after_share * plan.deals:
            report.killed_at_payouts = _payouts_at_bank(stack)
            stack.kill_worker("worker-b")
            phases.log(f"worker-b killed (SIGKILL) after {report.killed_at_payouts} payouts reached the bank")
            stack.start_worker("worker-b")
        states = _states(stack)
        if states.get("closed", 0) == plan.deals:
            phases.reached("every deal closed")
            return
        acted = people.act()
        for milestone, count in (
            ("every account opened", people.opened),
            ("every buyer paid", len(people.paid)),
            ("every title transferred", len(people.titled)),
        ):
            if count == plan.deals:
                phases.reached(milestone)
        if acted or not creation.done() or _busy(stack):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= QUIET_S:
            report.reconcile_rounds += 1
            phases.log(f"reconciliation round {report.reconcile_rounds}: {dict(states)}")
            with phases.timed("reconciliation rounds (console)"):
                report.reconcile_output += reconcile_from_console(stack, rt, people.actors["finance"])
            quiet_since = None
        time.sleep(POLL_S)


def figures(stack: ChaosStack, rt: Runtime) -> dict[str, int]:
    with stack.sim_rows() as sim:
        deliveries = Counter(
            f"{row['type']}:{row['status']}:{row['copy']}"
            for row in sim.execute("SELECT type, status, copy FROM deliveries").fetchall()
        )
        submissions = sim.execute("SELECT COALESCE(SUM(submissions), 0), COUNT(*) FROM payouts").fetchone()
        lags = sorted(  # from due to delivered, first attempts: how long callbacks queue at the bank
            row[0]
            for row in sim.execute(
                "SELECT delivered_at - next_attempt_at FROM deliveries WHERE status = 'delivered' AND attempts = 1"
            )
        ) or [0.0]
    with rt.db.uow() as uow:
        session = uow.session
        count = session.scalar
        return {
            "callbacks_sent": sum(n for key, n in deliveries.items() if ":delivered:" in key),
            "callbacks_dropped": sum(n for key, n in deliveries.items() if ":dropped:" in key),
            "callbacks_duplicated": sum(n for key, n in deliveries.items() if key.endswith(":1")),
            "inbox_rows": count(select(func.count()).where(~BankNotification.notification_id.like("recon:%"))),
            "repairs_recon": count(
                select(func.count(func.distinct(ReconciliationItem.bank_reference))).where(
                    ReconciliationItem.status == "repaired"
                )
            ),
            "repair_events": count(select(func.count()).where(DealEvent.detail["marker"].as_string() == "补单")),
            "payouts": count(select(func.count()).select_from(Payout)),
            "payout_submissions": int(submissions[0]),
            "bank_payouts": int(submissions[1]),
            "query_jobs": count(select(func.count()).where(Job.kind == "query_payout")),
            "job_retries": int(count(select(func.coalesce(func.sum(Job.attempts - 1), 0))) or 0),
            "jobs_dead": count(select(func.count()).where(Job.status == "dead")),
            "arrival_transfers": count(select(func.count()).where(LedgerTransfer.id.like("arrival:%"))),
            "callback_lag_p50_ms": round(lags[len(lags) // 2] * 1000),
            "callback_lag_p90_ms": round(lags[len(lags) * 9 // 10] * 1000),
        }


def make_app(stack: ChaosStack) -> Flask:
    return create_app(stack.config())


def check_outcome(stack: ChaosStack, rt: Runtime, report: ChaosReport) -> None:
    """Everything the chaos must not break (AssertionError names what broke)."""
    plan = report.plan
    assert report.states == Counter({"closed": plan.deals}), report.states
    ledger = stack.flask("ledger", "check", check=False)
    assert ledger.returncode == 0 and "✓" in ledger.stdout, ledger.stdout + ledger.stderr
    last_round = report.reconcile_output[-len(bank_days(stack)) :]
    assert all("(exit 0)" in output for output in last_round), "\n".join(last_round)
    with stack.sim_rows() as sim:
        arrivals = {(row[0], row[1]) for row in sim.execute("SELECT bank_code, bank_reference FROM arrivals")}
        bank_payouts = sim.execute("SELECT payout_id, bank_reference, status, submissions FROM payouts").fetchall()
        balances = sim.execute("SELECT COALESCE(SUM(balance_fen), 0) FROM accounts").fetchone()[0]
        deliveries = sim.execute("SELECT notification_id, type, status, body FROM deliveries WHERE copy = 0").fetchall()
    # each bank reference posted exactly once: one arrival transfer per booked arrival, none more
    with rt.db.uow() as uow:
        posted = set(uow.session.scalars(select(LedgerTransfer.id).where(LedgerTransfer.id.like("arrival:%"))))
        ours = {p.payout_id: (p.bank_reference, p.status) for p in uow.session.scalars(select(Payout))}
        settled = set(
            uow.session.scalars(select(LedgerTransfer.pending_id).where(LedgerTransfer.kind == "post_pending"))
        )
        jobs = Counter(dict(uow.session.execute(select(Job.status, func.count()).group_by(Job.status)).all()))
        inbox = set(
            uow.session.scalars(
                select(BankNotification.notification_id).where(~BankNotification.notification_id.like("recon:%"))
            )
        )
    assert posted == {f"arrival:{bank}:{reference}" for bank, reference in arrivals}, "arrivals posted != booked"
    with rt.db.uow() as uow:  # payee and amount rules, two people on every approval, every payout audited
        broken = fund_safety_problems(uow.session, rt.products)
    assert broken == [], broken
    assert audit_problems(rt) == [], "the audit chain does not verify"
    # no payout sent twice: one per deal, each submitted to the bank once, paid once, settled once in the ledger
    assert len(bank_payouts) == plan.deals, len(bank_payouts)
    assert [row["payout_id"] for row in bank_payouts if row["submissions"] != 1] == [], "a payout was resubmitted"
    assert {row["payout_id"]: (row["bank_reference"], row["status"]) for row in bank_payouts} == ours
    assert {f"payout:{payout_id}" for payout_id in ours} <= settled, "a paid payout whose hold was not posted"
    assert balances == 0, f"money left in the bank's virtual accounts: {balances} fen"
    assert set(jobs) == {"done"}, jobs
    delivered = {row["notification_id"] for row in deliveries if row["status"] == "delivered"}
    assert inbox == delivered, "inbox rows differ from the notifications the bank delivered"
    _check_repairs(rt, [row for row in deliveries if row["status"] == "dropped"])


def _check_repairs(rt: Runtime, dropped: list[sqlite3.Row]) -> None:
    """Every dropped notification was made good: 补单 on the deal's timeline (an account or an arrival), or the
    payout settled by a query or by reconciliation; and reconciliation repaired nothing that was not lost."""
    kinds = Counter(row["type"] for row in dropped)
    assert set(kinds) == {"account_opened", "funds_arrived", "payout_result"}, f"not every kind was dropped: {kinds}"
    with rt.db.uow() as uow:
        repaired_refs = set(
            uow.session.scalars(
                select(ReconciliationItem.bank_reference).where(ReconciliationItem.status == "repaired")
            )
        )
        marked = {
            (event.event, _marked_subject(event.detail)): event.actor
            for event in uow.session.scalars(select(DealEvent).where(DealEvent.event.in_(EVENTS_WITH_MARKER)))
            if event.detail.get("marker") == "补单"
        }
        by_query = {
            event.detail["payout_id"]
            for event in uow.session.scalars(
                select(DealEvent).where(DealEvent.event == "payout_succeeded", DealEvent.actor == "system:worker")
            )
        }
    lost_refs = set()
    for row in dropped:
        body = json.loads(row["body"])
        if row["type"] == "account_opened":
            assert ("account_opened", body["account_no"]) in marked, f"account {body['request_id']} not repaired"
        elif row["type"] == "funds_arrived":
            lost_refs.add(body["bank_reference"])
            assert body["bank_reference"] in repaired_refs, f"arrival {body['bank_reference']} not repaired"
            assert ("funds_arrived", body["bank_reference"]) in marked, f"no 补单 on the timeline: {body}"
        else:
            lost_refs.add(body["bank_reference"])
            by_statement = ("payout_succeeded", body["payout_id"]) in marked and body["bank_reference"] in repaired_refs
            assert by_statement or body["payout_id"] in by_query, f"payout result lost: {body}"
    assert repaired_refs <= lost_refs, f"repaired what was not lost: {sorted(repaired_refs - lost_refs)}"


EVENTS_WITH_MARKER = ("account_opened", "funds_arrived", "payout_succeeded")


def _marked_subject(detail: dict[str, Any]) -> str | None:
    return detail.get("bank_reference") or detail.get("account_no") or detail.get("payout_id")
