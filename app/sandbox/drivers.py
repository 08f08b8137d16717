"""Drive workflow paths through the deal services in the simulation sandbox.

Every product runs at the services level: for each path a real deal is created in the sandbox database from
a sample intake form of the product for the city, and each transition is brought about the way it happens
in production — a person's event through the deal services (confirm, title transfer, manual actions with a
reason and their inputs), money through the bank simulator (/sim/pay), bank answers through the platform's
jobs and the simulator's signed callbacks, deadlines by moving the sandbox clock and firing the due timers.
A guard is met by what the path needs: the amount paid in (full, partial, enough for the next month), the
lease length on the form, or earlier stages run first. What this city's config cannot bring about is
`Unreachable` (a note); anything else that goes wrong is a problem."""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
from collections import deque
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Agreement, Deal, DealEvent, Payout
from app.deals import contract_import
from app.deals import service as deals
from app.deals.case_blocks import arrival_event, free_in_custody
from app.deals.timers import fire_due_timers
from app.domain.cities import CityConfig
from app.domain.money import parse_yuan
from app.domain.rent import plan_rent
from app.payouts import approvals as payout_approvals
from app.payouts.status import PayoutStatus
from app.platform.errors import CunguanError, ValidationError
from app.platform.runtime import Runtime
from app.sandbox.bank import BankProblem, BankSnapshot, SandboxBank
from app.sandbox.forms import BUYER, form_has, product_form, sample_form
from app.state_machine.definition import Transition, WorkflowDefinition
from app.state_machine.engine import Engine
from app.state_machine.parameters import resolve

PAYMENT_RESULTS = frozenset({"payout_succeeded", "payout_failed", "refund_succeeded", "refund_failed"})
BANK_ANSWERS = PAYMENT_RESULTS | {"account_opened"}
FAILURES = frozenset({"payout_failed", "refund_failed"})
ARRIVALS = frozenset({"funds_arrived", "fund_drawn"})
LAST_GUARDS = frozenset({"last_rent_month", "last_stage"})
NOTED_LABEL = "已记录，未触发流转"  # workflow_runner.fire_or_note: an event the state did not take
FUND_CENTRE = ("住房公积金管理中心", "955880000000000001")
CLAIM_PAYEE = {"payee_name": "王五", "payee_account": "6222020200112233445"}
UNGUARDED_ARRIVAL_FEN = 100  # money that changes no guard: a small overpayment
MAX_UNITS = 24  # months or stages run before the last one: more is not a path worth simulating


class Unreachable(Exception):
    """This city's config cannot make the transition's guard come out the way the path needs."""


class PathProblem(Exception):
    """The services did not do what the path needs although the config allows it: a finding."""


FAILURES_OF_A_PATH = (Unreachable, PathProblem, BankProblem, CunguanError)


def wants(transition: Transition) -> tuple[str, bool] | None:
    """(guard name, the value the path needs), or None for an unguarded transition."""
    if transition.guard is None:
        return None
    return transition.guard.lstrip("!"), not transition.guard.startswith("!")


# --- agreements: one real PDF per product, copies for the other deals ----------------------------------


@dataclass
class SignOnce:
    """The sandbox's agreement signer (its vocabulary's `sign_agreement` signs with it): it renders and signs
    one PDF per product (each product has its own template); later deals of the product get a copy of that
    signed file."""

    rendered: int = 0
    signed: dict[str, Agreement] = field(default_factory=dict)

    def __call__(self, rt: Runtime, deal: Deal) -> Agreement:
        from app.agreements.service import sign_agreement

        first = self.signed.get(deal.product)
        if first is None:
            first = self.signed[deal.product] = sign_agreement(rt, deal)
            self.rendered += 1
            return first
        return Agreement(
            deal_id=deal.id,
            template=first.template,
            html=first.html,
            pdf=first.pdf,
            pdf_sm3=first.pdf_sm3,
            signed_at=rt.clock(),
        )


@dataclass
class SandboxClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance_to(self, when: datetime) -> None:
        self.now = max(self.now, when)

    def tick(self) -> None:
        self.now += timedelta(seconds=1)


class QuietLog(logging.Handler):
    """Keeps the warnings of the sandbox's workers and timers (they go nowhere else while simulating): a
    timer that could not fire says why here."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def reason(self, deal_id: int, since: int) -> str:
        for record in reversed(self.records[since:]):
            if getattr(record, "deal_id", None) == deal_id:
                return f"：{getattr(record, 'error', record.getMessage())}（{getattr(record, 'code', '')}）"
        return ""


@dataclass(frozen=True)
class People:
    agent: deals.Actor
    ops: deals.Actor
    approvers: tuple[deals.Actor, ...]


@dataclass(frozen=True)
class _Snapshot:
    """The sandbox where paths part: both databases, the clock, how far the deal's timeline was read."""

    platform: sqlite3.Connection
    bank: BankSnapshot
    now: datetime
    seen_event_id: int


@dataclass(frozen=True)
class Step:
    transition: Transition
    setup: bool  # run to reach the path's guard (earlier stages), not part of the path itself


# --- one product ----------------------------------------------------------------------------------------


class ProductDriver:
    """Runs the paths of one product of one city in the sandbox."""

    def __init__(
        self,
        rt: Runtime,
        bank: SandboxBank,
        clock: SandboxClock,
        city: CityConfig,
        product: str,
        people: People,
        log: QuietLog,
    ) -> None:
        self.rt, self.bank, self.clock, self.city, self.people, self.log = rt, bank, clock, city, people, log
        self.config = city.product(product)
        self.definition: WorkflowDefinition = rt.workflow(self.config.workflow_id, self.config.workflow_version)
        self.params = resolve(self.definition.parameters, self.config.overrides())
        self.by_edge = {(t.source, t.event, t.target): t for t in self.definition.transitions}
        self.imports = 0

    def run_all(self, paths: list[tuple[Transition, ...]]) -> list[Exception | None]:
        """Bring every path about, each on a deal of its own as far as it is its own: paths with the same
        beginning share it (one deal goes through it once; where they part the sandbox is snapshotted and
        each continues from the snapshot). Per path: None, or why it failed (Unreachable, PathProblem,
        BankProblem, a service's error)."""
        outcomes: dict[int, Exception | None] = {}
        runs: list[tuple[int, _PathRun]] = []
        for index, path in enumerate(paths):
            try:
                runs.append((index, _PathRun(self, path)))
            except Unreachable as why:
                outcomes[index] = why
        groups: dict[tuple[int | None, bool], list[tuple[int, _PathRun]]] = {}
        for index, run in runs:
            groups.setdefault(run.creation(), []).append((index, run))
        for group in groups.values():
            lead = group[0][1]
            try:
                lead.create()
            except Exception as error:  # a bug met on the way is a finding about these paths, not a crash
                outcomes.update(dict.fromkeys((index for index, _ in group), error))
                continue
            for _, run in group:
                run.deal_id = lead.deal_id
            self._explore(group, 0, outcomes)
        return [outcomes.get(index) for index in range(len(paths))]

    def _explore(self, group: list[tuple[int, _PathRun]], cursor: int, outcomes: dict[int, Exception | None]) -> None:
        """Run the paths of `group` (one deal, all at `cursor`) to their ends."""
        lead = group[0][1]
        done = [index for index, run in group if cursor >= len(run.plan)]
        if done:
            try:
                self.bank.check(self.rt)  # nothing refused or failed on the way
                outcomes.update(dict.fromkeys(done))
            except FAILURES_OF_A_PATH as error:
                outcomes.update(dict.fromkeys(done, error))
        group = [(index, run) for index, run in group if cursor < len(run.plan)]
        branches: dict[tuple[Step, bool], list[tuple[int, _PathRun]]] = {}
        for index, run in group:
            branches.setdefault(run.step_key(cursor), []).append((index, run))
        saved = self._snapshot(lead) if len(branches) > 1 else None
        for number, branch in enumerate(branches.values()):
            if number and saved is not None:
                self._restore(saved, branch)
            self._step(branch, cursor, outcomes)

    def _step(self, branch: list[tuple[int, _PathRun]], cursor: int, outcomes: dict[int, Exception | None]) -> None:
        lead = branch[0][1]
        try:
            fired = lead.iterate(cursor)
        except Exception as error:  # a bug met on the way is a finding about these paths, not a crash
            outcomes.update(dict.fromkeys((index for index, _ in branch), error))
            return
        following: dict[int, list[tuple[int, _PathRun]]] = {}
        for index, run in branch:
            run.deal_id, run.seen_event_id = lead.deal_id, lead.seen_event_id
            try:
                following.setdefault(run.advance(cursor, fired), []).append((index, run))
            except FAILURES_OF_A_PATH as error:
                outcomes[index] = error
        saved = self._snapshot(lead) if len(following) > 1 else None
        for number, (after, rest) in enumerate(following.items()):
            if number and saved is not None:
                self._restore(saved, rest)
            self._explore(rest, after, outcomes)

    def _snapshot(self, lead: _PathRun) -> _Snapshot:
        platform = sqlite3.connect(":memory:")
        with closing(sqlite3.connect(self._platform_file())) as live:
            live.backup(platform)
        return _Snapshot(platform, self.bank.snapshot(), self.clock.now, lead.seen_event_id)

    def _restore(self, saved: _Snapshot, runs: list[tuple[int, _PathRun]]) -> None:
        self.rt.db.engine.dispose()  # no pooled connection keeps what the snapshot undoes
        with closing(sqlite3.connect(self._platform_file())) as live:
            saved.platform.backup(live)
        self.bank.restore(saved.bank)
        self.clock.now = saved.now
        for _, run in runs:
            run.seen_event_id = saved.seen_event_id

    def _platform_file(self) -> str:
        database = self.rt.db.engine.url.database
        assert database, "the sandbox database is a file"
        return database

    # how many months or stages a path's "last" guard counts, and the loop that runs one more

    def lease_months(self, path: tuple[Transition, ...]) -> int | None:
        """The lease a path implies: as many months as it releases, one more when it never reaches the last;
        never shorter than one payment cycle (earlier months are then run first, see `plan`)."""
        releases = [need for t in path if (need := wants(t)) and need[0] == "last_rent_month"]
        if not releases:
            return None
        implied = len(releases) + (0 if any(value for _, value in releases) else 1)
        return max(implied, int(self.installment.get("months_per_installment", 1)))

    def _units(self, guard: str, path: tuple[Transition, ...]) -> int:
        """How many months (of the lease) or stages (of the release rule) the path's deal has."""
        if guard == "last_rent_month":
            return self.lease_months(path) or 0
        return len(self.config.release.tranches) if self.config.release else 0

    @cached_property
    def installment(self) -> dict[str, str]:
        """The shortest payment cycle the form offers whose rent this city supervises (深圳 exempts the first
        three months of an installment: paying monthly, nothing would be held)."""
        if not form_has(self.config, "months_per_installment"):
            return {}
        form = sample_form(self.config)
        monthly, deposit = parse_yuan(form["monthly_rent_fen"]), parse_yuan(form.get("deposit_fen") or "0")
        exempt = (self.params["rent_months_exempt"], self.params["deposit_months_exempt"])
        for option in product_form(self.config).field("months_per_installment").options:
            try:
                plan_rent(monthly, int(option), deposit, *exempt)
            except ValidationError:
                continue
            return {"months_per_installment": option}
        return {}  # nothing supervised whatever the cycle: creating the deal says so

    def plan(self, path: tuple[Transition, ...]) -> list[Step]:
        """The path's steps, with the earlier stages run first when it needs the last one."""
        steps = [Step(t, False) for t in path]
        guard = next((need[0] for t in path if (need := wants(t)) and need[0] in LAST_GUARDS), None)
        if guard is None:
            return steps
        releases = [need for t in path if (need := wants(t)) and need[0] == guard]
        total = self._units(guard, path)
        reaches_last = any(value for _, value in releases)
        if not reaches_last:
            if total < len(releases) + 1:
                raise Unreachable(f"只有 {total} 期，走不到「非最后一期」")
            return steps
        earlier = total - len(releases)
        if earlier < 0:
            raise Unreachable(f"只有 {total} 期")
        if earlier == 0:
            return steps
        if earlier > MAX_UNITS:
            raise Unreachable(f"需先完成 {earlier} 期")
        loop = self._loop(guard)
        on_loop = {t.source for t in loop}
        entry = next((i for i, t in enumerate(path) if t.source in on_loop), None)
        if entry is None:
            raise Unreachable("路径不经过阶段循环")
        start = next(i for i, t in enumerate(loop) if t.source == path[entry].source)
        one_round = [Step(t, True) for t in loop[start:] + loop[:start]]
        return steps[:entry] + one_round * earlier + steps[entry:]

    def _loop(self, guard: str) -> list[Transition]:
        """The not-last release and the shortest way back to where it was released (no failures, no
        negated guards), e.g. in_progress → awaiting_acceptance → stage_releasing → in_progress."""
        release = next(t for t in self.definition.transitions if t.guard == f"!{guard}")
        queue: deque[tuple[str, list[Transition]]] = deque([(release.target, [])])
        seen = {release.target}
        while queue:
            state, way = queue.popleft()
            if state == release.source:
                return [release, *way]
            for t in self.definition.transitions:
                usable = t.event not in FAILURES and not (t.guard or "").startswith("!") and t.source != t.target
                if t.source == state and usable and t.target not in seen:
                    seen.add(t.target)
                    queue.append((t.target, [*way, t]))
        raise Unreachable(f"找不到回到「{self.definition.label(release.source)}」的流转")


class _PathRun:
    def __init__(self, driver: ProductDriver, path: tuple[Transition, ...]) -> None:
        self.d = driver
        self.rt = driver.rt
        self.path = path
        self.plan = driver.plan(path)
        self.deal_id = 0
        self.seen_event_id = 0

    # --- the run ------------------------------------------------------------------------------------

    def creation(self) -> tuple[int | None, bool]:
        """What the deal is created with: the lease the path implies, and whether it enters by import."""
        return self.d.lease_months(self.path), bool(self.path) and self.path[0].event == contract_import.EVENT

    def step_key(self, cursor: int) -> tuple[Step, bool]:
        """What the next iteration does: its step and whether the bank fails payouts meanwhile."""
        return self.plan[cursor], self._failing(cursor)

    def iterate(self, cursor: int) -> list[Transition]:
        """One step: meet its guard, act, let the bank and the workers finish; the transitions taken."""
        transition = self.plan[cursor].transition
        self._prepare(transition, cursor)
        self._act(transition)
        self._settle(cursor)
        fired, self.seen_event_id = self._fired()
        return fired

    def create(self) -> None:
        lease = self.d.lease_months(self.path)
        cycle = self.d.installment.get("months_per_installment")  # a lease is at least one payment cycle
        months = str(lease) if lease is not None else cycle
        overrides = self.d.installment | ({"lease_months": months} if months else {})
        if self.path and self.path[0].event == contract_import.EVENT:
            self.deal_id = self._import(overrides)
        else:
            form = sample_form(self.d.config, overrides)
            city, product = self.d.city.admin_code, self.d.config.product
            self.deal_id = deals.create_deal(self.rt, self.d.people.agent, city, product, form)
        if lease is not None and not form_has(self.d.config, "lease_months"):
            # the product's form does not ask for the lease (the fund centre's rent defaults to 12 months):
            # the sandbox deal gets the lease the path implies, as a form field of the city would give it
            with self._deal() as (session, deal):
                deal.facts = {**(deal.facts or {}), "lease_months": lease}
                session.commit()

    def _import(self, overrides: dict[str, str]) -> int:
        """A stock contract entering by the bulk import (one row, as an import file would carry it)."""
        self.d.imports += 1
        form = sample_form(self.d.config, overrides | {"lease_contract_no": f"SIM-IMPORT-{self.d.imports:05d}"})
        buffer = io.StringIO()
        csv.writer(buffer).writerows([[contract_import.CITY_COLUMN, *form], [self.d.city.admin_code, *form.values()]])
        result = contract_import.import_contracts(
            self.rt, self.d.people.agent.username, "simulation.csv", buffer.getvalue().encode()
        )
        if result.imported != 1:
            bad = "；".join(f"{row.field}：{row.reason}" for row in result.bad_rows)
            raise PathProblem(f"存量合同导入未成功：{bad or '没有导入'}")
        with self.rt.db.uow() as uow:
            deal_id = uow.session.scalar(select(func.max(Deal.id)))
        assert deal_id is not None
        return deal_id

    @contextmanager
    def _deal(self) -> Iterator[tuple[Session, Deal]]:
        with self.rt.db.uow() as uow:
            deal = uow.session.get(Deal, self.deal_id)
            assert deal is not None
            yield uow.session, deal

    def _fired(self) -> tuple[list[Transition], int]:
        """The transitions the deal took since the last look (events a state did not take are skipped)."""
        with self.rt.db.uow() as uow:
            events = list(
                uow.session.scalars(
                    select(DealEvent)
                    .where(DealEvent.deal_id == self.deal_id, DealEvent.id > self.seen_event_id)
                    .order_by(DealEvent.id)
                )
            )
        fired = [
            self.d.by_edge[edge]
            for event in events
            if (edge := (event.from_state, event.event, event.to_state)) in self.d.by_edge
            and (event.detail or {}).get("label") != NOTED_LABEL
        ]
        return fired, (events[-1].id if events else self.seen_event_id)

    def advance(self, cursor: int, fired: list[Transition]) -> int:
        """The path's cursor after `fired`; Unreachable or PathProblem when the path was not followed."""
        expected = self.plan[cursor].transition
        if not fired:
            self.d.bank.check(self.rt)  # a refused callback or a failed job explains it best
            raise PathProblem(f"「{expected.label}」没有发生{self._why_not(expected)}")
        for transition in fired:
            if cursor >= len(self.plan):
                raise PathProblem(f"路径结束后又发生了「{transition.label}」")
            expected = self.plan[cursor].transition
            if transition != expected:
                if (transition.source, transition.event) == (expected.source, expected.event):
                    raise Unreachable(f"「{expected.label}」的条件不成立，实际为「{transition.label}」")
                nothing_paid = expected.event in FAILURES and transition.event == expected.event.replace(
                    "failed", "succeeded"
                )
                if transition.source == expected.source and nothing_paid:  # a settlement with nothing to pay
                    raise Unreachable(f"无需划付，「{expected.label}」不会发生")
                raise PathProblem(f"应发生「{expected.label}」，实际发生「{transition.label}」")
            cursor += 1
        return cursor

    def _why_not(self, expected: Transition) -> str:
        if expected.event not in PAYMENT_RESULTS:
            return ""
        with self._deal() as (session, deal):
            payouts = list(session.scalars(select(Payout).where(Payout.deal_id == deal.id)))
        if not payouts:
            return "：存管单没有发出任何付款"
        states = "、".join(sorted({p.status for p in payouts}))
        return f"：存管单的付款状态为 {states}"

    # --- guards ---------------------------------------------------------------------------------------

    def _shortfall(self, guard: str) -> int | None:
        """Fen still to arrive for a money guard to hold (zero or less: it holds), None for other guards."""
        with self._deal() as (session, deal):
            free = free_in_custody(session, deal)
            facts = deal.facts or {}
            needs = {
                "fully_funded": lambda: deal.custody_amount_fen - free,
                "has_custody_funds": lambda: 1 - free,
                "move_in_funded": lambda: facts["custody_per_installment_fen"] + facts["deposit_custody_fen"] - free,
                "rent_covered": lambda: facts["deposit_custody_fen"] + facts["custody_per_month_fen"] - free,
            }
            return needs[guard]() if guard in needs else None

    def _prepare(self, transition: Transition, cursor: int) -> None:
        """Before an event that is not itself money in: pay in what its guard needs, leaving the deal where
        it is (a partial arrival, or money noted in a state that does not take arrivals)."""
        need = wants(transition)
        if need is None or transition.event in ARRIVALS or need[0] in LAST_GUARDS:
            return
        guard, value = need
        shortfall = self._shortfall(guard)
        if shortfall is None or (shortfall <= 0) == value:
            return
        if not value:
            raise Unreachable(f"「{transition.label}」要求条件「{guard}」不成立，但托管资金已满足")
        self._pay_in(shortfall, transition)
        self._settle(cursor)
        fired, self.seen_event_id = self._fired()
        moved = [t for t in fired if t.source != t.target]
        if moved or self._state() != transition.source:
            raise Unreachable(f"为满足「{guard}」入账后存管单离开了「{self.d.definition.label(transition.source)}」")

    def _state(self) -> str:
        with self._deal() as (_, deal):
            return deal.state

    # --- acts -----------------------------------------------------------------------------------------

    def _act(self, transition: Transition) -> None:
        event, people = transition.event, self.d.people
        self.d.clock.tick()
        if event in ARRIVALS:
            self._arrive(transition)
        elif event in {timer.event for timer in self.d.definition.states[transition.source].timers}:
            self._let_time_pass(transition)
        elif event == "confirm":
            deals.confirm_agreement(self.rt, people.agent, self.deal_id)
        elif event == "title_transferred":
            deals.record_title_transferred(self.rt, people.ops, self.deal_id)
        elif event in deals.MANUAL_ACTIONS:
            reason = f"仿真：{transition.label}"
            deals.manual_action(self.rt, people.ops, self.deal_id, event, reason, self._inputs(event))
        elif event != contract_import.EVENT and event not in BANK_ANSWERS:  # came about by themselves
            raise PathProblem(f"仿真无法触发事件「{event}」（既不是人工操作、定时器，也不是银行通知）")

    def _arrive(self, transition: Transition) -> None:
        need = wants(transition)
        amount = UNGUARDED_ARRIVAL_FEN
        if need is not None:
            shortfall = self._shortfall(need[0])
            if shortfall is None:
                raise PathProblem(f"仿真不知道条件「{need[0]}」需要多少入账")
            if need[1]:
                amount = max(shortfall, 1)
            elif shortfall >= 2:
                amount = shortfall // 2
            else:
                raise Unreachable(f"「{transition.label}」需要部分入账，但差额只有 {max(shortfall, 0)} 分")
        self._pay_in(amount, transition)

    def _pay_in(self, amount_fen: int, transition: Transition) -> None:
        with self._deal() as (_, deal):
            account = deal.virtual_account
            if account is None or not account.account_no:
                raise PathProblem(f"「{transition.label}」需要入账，但存管单没有已开立的虚户")
            bank_code, account_no = deal.bank_code, account.account_no
            payer = (deal.buyer_name or BUYER["name"], deal.buyer_bank_account or BUYER["account"])
            if arrival_event(self.rt, deal) == "fund_drawn":  # the money expected now is the fund centre's
                payer = FUND_CENTRE
        self.d.bank.pay(bank_code, account_no, amount_fen, *payer)

    def _let_time_pass(self, transition: Transition) -> None:
        engine = Engine(self.d.definition, self.rt.registry)
        due = next(
            item.due_at
            for item in engine.timers(transition.source, self.d.clock.now, self.d.params)
            if item.timer.event == transition.event
        )
        self.d.clock.advance_to(due + timedelta(seconds=1))
        since = len(self.d.log.records)
        fire_due_timers(self.rt)
        if self._state() == transition.source:
            raise PathProblem(f"「{transition.label}」到期未能执行{self.d.log.reason(self.deal_id, since)}")

    def _inputs(self, event: str) -> dict[str, str]:
        fields = deals.MANUAL_ACTIONS[event].fields
        inputs: dict[str, str] = {}
        if "deduction" in fields:
            with self._deal() as (_, deal):
                deposit_fen = (deal.facts or {}).get("deposit_custody_fen", 0)
            inputs["deduction"] = f"{deposit_fen // 4 // 100}.{deposit_fen // 4 % 100:02d}"
        if "payee" in fields:
            inputs |= CLAIM_PAYEE
        if "frozen_account" in fields:
            with self._deal() as (_, deal):
                bank_code, amount_fen = deal.bank_code, deal.custody_amount_fen
            inputs["frozen_account"] = self.d.bank.freeze(bank_code, amount_fen)
        return inputs

    # --- the bank -------------------------------------------------------------------------------------

    def _failing(self, cursor: int) -> bool:
        """The bank pays unless the next payment result the plan expects is a failure."""
        upcoming = next((s.transition for s in self.plan[cursor:] if s.transition.event in PAYMENT_RESULTS), None)
        return upcoming is not None and upcoming.event in FAILURES

    def _settle(self, cursor: int) -> None:
        """Run the platform's jobs and the bank until both are idle."""
        with self._deal() as (_, deal):
            bank_code = deal.bank_code
        self.d.bank.fail_payouts(bank_code, self._failing(cursor))
        self.d.bank.settle(self.rt, self._approve)

    def _approve(self) -> None:
        """Payouts above the city's approval threshold: approved by people other than who asked."""
        with self.rt.db.uow() as uow:
            waiting = list(
                uow.session.scalars(select(Payout.payout_id).where(Payout.status == PayoutStatus.AWAITING_APPROVAL))
            )
        for payout_id in waiting:
            for approver in self.d.people.approvers:
                try:
                    if payout_approvals.approve(self.rt, approver, payout_id).released:
                        break
                except ValidationError as refused:
                    if refused.code != "SAME_PERSON":
                        raise
