"""One workflow path brought about on a sandbox deal: the deal is created (or imported), and each step's
guard is met, its event acted out (a person's action, money in, time passing) and the bank and the workers
settled, then the transitions the deal took are checked against the path."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Deal, DealEvent, Payout
from app.deals import contract_import
from app.deals import service as deals
from app.deals.case_blocks import arrival_event, free_in_custody
from app.deals.sample_forms import BUYER, form_has, sample_form
from app.deals.timers import deal_timers, fire_due_timers
from app.payouts import approvals as payout_approvals
from app.payouts.status import PayoutStatus
from app.platform.errors import ValidationError
from app.sandbox.steps import FAILURES, LAST_GUARDS, PathProblem, Step, Unreachable, wants
from app.state_machine.definition import Transition

if TYPE_CHECKING:
    from app.sandbox.drivers import ProductDriver

PAYMENT_RESULTS = frozenset({"payout_succeeded", "payout_failed", "refund_succeeded", "refund_failed"})
FREEZE_ANSWERS = frozenset({"freeze_confirmed", "freeze_failed"})
BANK_ANSWERS = PAYMENT_RESULTS | FREEZE_ANSWERS | {"account_opened", "unfreeze_confirmed"}
ARRIVALS = frozenset({"funds_arrived", "fund_drawn"})
NOTED_LABEL = "已记录，未触发流转"  # workflow_runner.fire_or_note: an event the state did not take
FUND_CENTRE = ("住房公积金管理中心", "955880000000000001")
UNGUARDED_ARRIVAL_FEN = 100  # money that changes no guard: a small overpayment


class PathRun:
    """One path on a sandbox deal, which paths with the same beginning share up to where they part."""

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

    def step_key(self, cursor: int) -> tuple[Step, frozenset[str]]:
        """What the next iteration does: its step and the bank's faults meanwhile (failing payouts, refusing
        freezes)."""
        return self.plan[cursor], self._faults(cursor)

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
            form = sample_form(self.d.config, self.d.variant, overrides)
            city, product = self.d.city.admin_code, self.d.config.product
            self.deal_id = deals.create_deal(self.rt, self.d.people.agent, city, product, form)
        if lease is not None and not form_has(self.d.config, self.d.variant, "lease_months"):
            # the product's form does not ask for the lease (the fund centre's rent defaults to 12 months):
            # the sandbox deal gets the lease the path implies, as a form field of the city would give it
            with self._deal() as (session, deal):
                deal.facts = {**(deal.facts or {}), "lease_months": lease}
                session.commit()

    def _import(self, overrides: dict[str, str]) -> int:
        """A stock contract entering by the bulk import (one row, as an import file would carry it)."""
        self.d.imports += 1
        form = sample_form(
            self.d.config, self.d.variant, overrides | {"lease_contract_no": f"SIM-IMPORT-{self.d.imports:05d}"}
        )
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
        with self._deal() as (session, deal):  # as the worker counts it: pinned config, calendar, bank cut-off
            due = next(
                item.due_at for item in deal_timers(self.rt, session, deal) if item.timer.event == transition.event
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
        return inputs

    # --- the bank -------------------------------------------------------------------------------------

    def _faults(self, cursor: int) -> frozenset[str]:
        """The bank pays unless the next payment result the plan expects is a failure, and freezes unless the
        next freeze answer it expects is a refusal."""
        faults = set()
        if self._upcoming(cursor, PAYMENT_RESULTS) in FAILURES:
            faults.add("payout_failure")
        if self._upcoming(cursor, FREEZE_ANSWERS) == "freeze_failed":
            faults.add("freeze_refusal")
        return frozenset(faults)

    def _upcoming(self, cursor: int, events: frozenset[str]) -> str | None:
        """The next of `events` the plan expects from `cursor` on."""
        return next((s.transition.event for s in self.plan[cursor:] if s.transition.event in events), None)

    def _settle(self, cursor: int) -> None:
        """Run the platform's jobs and the bank until both are idle."""
        with self._deal() as (_, deal):
            bank_code = deal.bank_code
        self.d.bank.fail(bank_code, self._faults(cursor))
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
