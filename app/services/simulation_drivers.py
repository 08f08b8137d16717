"""Drive one workflow path in the simulation sandbox.

`ServiceDriver`: products wired into the deal services (resale escrow) — a real deal in the sandbox
database, the real guards and actions (agreement signed, account requested, ledger holds and postings);
the bank is in-process (arrivals posted to the ledger, results handed to the workflow).
`CaseDriver`: products whose building blocks are not wired into services yet — the state machine with
the `CaseContext` the building blocks use; service actions are recorded, not run; money instructions are
checked against the custody balance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.ledger_repo import LedgerRepository
from app.db.models import Agreement, Deal, Payout
from app.domain import ledger
from app.domain.cities import ProductConfig
from app.domain.ledger import TransferSpec
from app.services.runtime import Runtime
from app.services.workflow_runner import DealContext
from app.state_machine import building_blocks as blocks
from app.state_machine.definition import Transition, WorkflowDefinition
from app.state_machine.engine import Engine
from app.state_machine.parameters import resolve
from app.state_machine.registry import Registry


class Unreachable(Exception):
    """This city's config cannot make the transition's guard come out the way the path needs."""


def wants(transition: Transition) -> tuple[str, bool] | None:
    """(guard name, the value the path needs), or None for an unguarded transition."""
    if transition.guard is None:
        return None
    return transition.guard.lstrip("!"), not transition.guard.startswith("!")


def service_level(definition: WorkflowDefinition, service_registry: Registry) -> bool:
    """Every guard and action of the workflow is a deal-service one (not a building block)."""
    names = {t.guard.lstrip("!") for t in definition.transitions if t.guard} | {
        action for t in definition.transitions for action in t.actions
    }
    return not names & (set(blocks.GUARDS) | set(blocks.ACTIONS)) and all(
        name in service_registry.guards or name in service_registry.actions for name in names
    )


# --- services level ----------------------------------------------------------------------------------


@dataclass
class SignOnce:
    """sign_agreement that renders and signs one PDF per simulation; later paths reuse that signed file."""

    rendered: int = 0
    signed: Agreement | None = None

    def __call__(self, ctx: DealContext) -> None:
        from app.services.agreements import sign_agreement

        if self.signed is None:
            self.signed = sign_agreement(ctx.rt, ctx.deal)
            self.rendered += 1
            ctx.session.add(self.signed)
            return
        copy = self.signed
        ctx.session.add(
            Agreement(
                deal_id=ctx.deal.id,
                template=copy.template,
                html=copy.html,
                pdf=copy.pdf,
                pdf_sm3=copy.pdf_sm3,
                signed_at=ctx.rt.clock(),
            )
        )


def sandbox_registry(base: Registry, overrides: dict[str, Callable[[Any], None]]) -> Registry:
    registry = Registry()
    registry.guards.update(base.guards)
    registry.actions.update({**base.actions, **overrides})
    return registry


class ServiceDriver:
    def __init__(self, rt: Runtime, definition: WorkflowDefinition, registry: Registry) -> None:
        self.rt = rt
        self.engine = Engine(definition, registry)
        self.arrivals = 0

    def _arrive(self, session: Session, deal: Deal, amount_fen: int) -> None:
        repo = LedgerRepository(session)
        clearing = repo.ensure_account(ledger.bank_clearing(deal.bank_code))
        self.arrivals += 1
        spec = TransferSpec(
            id=f"sim-arrival:{deal.deal_no}:{self.arrivals}",
            debit_code=clearing.code,
            credit_code=ledger.deal_custody(deal.deal_no).code,
            amount_fen=amount_fen,
            code="arrival",
            deal_id=deal.id,
        )
        repo.post(spec, at=self.rt.clock())

    def _payload(self, session: Session, deal: Deal, transition: Transition) -> dict[str, Any]:
        event = transition.event
        if event == "account_opened":
            return {"account_no": f"SIM{deal.id:012d}"}
        if event == "funds_arrived":
            held = LedgerRepository(session).balance(ledger.deal_custody(deal.deal_no).code)
            need = wants(transition)
            missing = deal.custody_amount_fen - held
            amount = (missing if need[1] else max(missing // 2, 1)) if need else 100
            if need and not need[1] and missing <= 1:
                raise Unreachable(transition.label)
            self._arrive(session, deal, amount)
            return {}
        if event in ("payout_succeeded", "payout_failed"):
            payout = session.scalars(select(Payout).where(Payout.deal_id == deal.id).order_by(Payout.id.desc())).first()
            assert payout is not None, "a payout result without a payout"
            payout.status = "succeeded" if event == "payout_succeeded" else "failed"
            return {"payout": payout}
        return {}

    def run(self, session: Session, deal: Deal, path: tuple[Transition, ...]) -> None:
        for transition in path:
            ctx = DealContext(self.rt, session, deal, "system:simulation")
            ctx.payload = self._payload(session, deal, transition)
            fired = self.engine.fire(deal, transition.event, ctx)
            if fired.transition != transition:
                raise Unreachable(transition.label)
            session.flush()
            session.expire(deal, ["virtual_account", "payouts", "agreement"])  # as the next request would load it


# --- state-machine level ------------------------------------------------------------------------------


def _recorded(fact: str) -> Callable[[blocks.CaseContext], None]:
    def record(ctx: blocks.CaseContext) -> None:
        ctx.case.setdefault("service_actions", []).append(fact)

    return record


def _request_payout(ctx: blocks.CaseContext) -> None:
    ctx.emit("payout", ctx.fact("custody_amount_fen"), "seller", "存管资金放款")


SERVICE_STAND_INS: dict[str, Callable[[blocks.CaseContext], None]] = {
    "sign_agreement": _recorded("sign_agreement"),
    "request_virtual_account": _recorded("request_virtual_account"),
    "record_virtual_account": _recorded("record_virtual_account"),
    "request_payout": _request_payout,
    "settle_payout": _recorded("settle_payout"),
    "release_payout_hold": _recorded("release_payout_hold"),
}


def case_registry() -> Registry:
    registry = Registry()
    blocks.register_building_blocks(registry)
    registry.guards["fully_funded"] = blocks.custody_covered
    registry.actions.update(SERVICE_STAND_INS)
    return registry


SAMPLE_FACTS = {
    "custody_amount_fen": 1_000_000,
    "custody_fen": 0,
    "monthly_rent_fen": 300_000,
    "months_per_installment": 3,
    "deposit_fen": 300_000,
    "lease_months": 12,
    "guarantee_fen": 500_000,
    "payee": "seller",
    # provident-fund rent draws one month at a time: custody per month is the rent, nothing held back
    "custody_per_month_fen": 300_000,
    "custody_per_installment_fen": 300_000,
    "deposit_custody_fen": 0,
}


@dataclass
class CaseDriver:
    definition: WorkflowDefinition
    product: ProductConfig
    registry: Registry = field(default_factory=case_registry)
    arriving: bool = False
    in_flight: list[blocks.Instruction] = field(default_factory=list)

    def _fund(self, ctx: blocks.CaseContext, target_fen: int) -> None:
        """Custody becomes `target_fen`; money added comes from the sample payer (so refunds can go back).
        On an arrival the workflow itself records where the money came from (`record_payer_account`)."""
        added = target_fen - ctx.case["custody_fen"]
        if added > 0 and not self.arriving:
            ctx.case.setdefault("origins", []).append({"account": "SIM-PAYER", "amount_fen": added})
        ctx.case["custody_fen"] = max(target_fen, 0)

    def _set_up(self, ctx: blocks.CaseContext, guard: str, value: bool) -> None:
        case = ctx.case
        if guard in ("custody_covered", "fully_funded"):
            self._fund(ctx, case["custody_amount_fen"] if value else case["custody_amount_fen"] // 2)
        elif guard == "has_custody_funds":
            self._fund(ctx, max(case["custody_fen"], case["custody_amount_fen"] // 2) if value else 0)
            if not value:
                case["origins"] = []
        elif guard == "move_in_funded":
            need = case["custody_per_installment_fen"] + case["deposit_custody_fen"]
            self._fund(ctx, need if value else need - 1)
        elif guard == "rent_covered":
            need = case["deposit_custody_fen"] + case["custody_per_month_fen"]
            self._fund(ctx, max(case["custody_fen"], need) if value else need - 1)
        elif guard == "last_rent_month":
            case["months_released"] = case["lease_months"] - 1 if value else 0
        elif guard == "last_stage":
            tranches = len(self.product.release.tranches) if self.product.release else 0
            if not value and tranches < 2:
                raise Unreachable(f"{guard}={value}")
            case["stages_released"] = tranches - 1 if value else 0

    def _apply(self, ctx: blocks.CaseContext, event: str, start: int, problems: list[str]) -> None:
        """Money instructions leave custody when given; a failed payout or refund brings them back."""
        if event in ("payout_failed", "refund_failed"):
            ctx.case["custody_fen"] += sum(instruction.amount_fen for instruction in self.in_flight)
            self.in_flight = []
        new = ctx.instructions[start:]
        if any(instruction.kind in ("payout", "refund") for instruction in new):
            self.in_flight = [instruction for instruction in new if instruction.kind in ("payout", "refund")]
        for instruction in new:
            if instruction.kind in ("payout", "refund"):
                if instruction.amount_fen > ctx.case["custody_fen"]:
                    problems.append(
                        f"{instruction.memo} {instruction.amount_fen} 分超过托管余额 {ctx.case['custody_fen']} 分"
                    )
                ctx.case["custody_fen"] -= instruction.amount_fen
            elif instruction.kind == "fund_draw":
                ctx.case["custody_fen"] += instruction.amount_fen
                origin = {"account": "公积金中心", "amount_fen": instruction.amount_fen}
                ctx.case.setdefault("origins", []).append(origin)

    def run(self, path: tuple[Transition, ...]) -> list[str]:
        """Problems found on the path (money instructions beyond custody); Unreachable when a guard cannot be met."""
        params = resolve(self.definition.parameters, self.product.overrides())
        ctx = blocks.CaseContext(params, dict(SAMPLE_FACTS), self.product.release)
        engine = Engine(self.definition, self.registry)
        state = _State(self.definition.initial)
        problems: list[str] = []
        self.in_flight = []
        for transition in path:
            need = wants(transition)
            before = ctx.case["custody_fen"]
            self.arriving = transition.event == "funds_arrived"
            if need:
                self._set_up(ctx, *need)
            if self.arriving and ctx.case["custody_fen"] <= before:  # an arrival brings money, at least a fen
                if need and not need[1]:
                    before = ctx.case["custody_fen"] - 1  # the set-up level is reached by this arrival
                else:
                    ctx.case["custody_fen"] = before + 1
            if self.arriving:
                added = ctx.case["custody_fen"] - before
                ctx.payload = {"payer_account": "SIM-PAYER", "amount_fen": added}
            start = len(ctx.instructions)
            fired = engine.fire(state, transition.event, ctx)
            if fired.transition != transition:
                raise Unreachable(transition.label)
            self._apply(ctx, transition.event, start, problems)
        return problems


@dataclass
class _State:
    state: str
