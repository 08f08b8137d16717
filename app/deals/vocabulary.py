"""The workflow vocabulary: every guard and action a workflow definition may name, listed here once.

`build_vocabulary` is called at start-up (app.platform.bootstrap.build_registry; the city sandbox calls it
with its own signer) and its registry lives on the Runtime; importing a module registers nothing. Every
registered callable takes the deal's context (`DealContext`); the products' pure rules, written on a
`CaseContext` (app.state_machine.building_blocks), are adapted to it by `case_guard`/`case_action`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.deals import actions
from app.deals.actions import AgreementSigner, signing
from app.deals.case_blocks import case_action, case_guard
from app.state_machine import building_blocks as blocks
from app.state_machine.building_blocks import CaseContext
from app.state_machine.money_checks import MoneyEffect
from app.state_machine.registry import Registry

PAYOUT_OUTCOMES = frozenset({"payout_succeeded", "payout_failed"})
REFUND_OUTCOMES = frozenset({"refund_succeeded", "refund_failed"})
RELEASES = MoneyEffect("release", PAYOUT_OUTCOMES)  # a payout (group) to the payee: payout_succeeded/_failed
REFUNDS = MoneyEffect("refund", REFUND_OUTCOMES)  # a refund group by original route: refund_succeeded/_failed


@dataclass(frozen=True)
class Named:
    """A vocabulary entry: the callable, and what it does with money when it moves some (the workflows' money
    checks read it: app/state_machine/money_checks.py)."""

    function: Callable[..., None]
    money: MoneyEffect | None = None


# the products' rules, written on a CaseContext, by the names workflows use
CASE_GUARDS: dict[str, Callable[[CaseContext], bool]] = {
    "fully_funded": blocks.fully_funded,
    "has_custody_funds": blocks.has_custody_funds,
    "move_in_funded": blocks.move_in_funded,
    "rent_covered": blocks.rent_covered,
    "last_rent_month": blocks.last_rent_month,
    "last_stage": blocks.last_stage,
    "tranche_due": blocks.tranche_due,
    "last_tranche": blocks.last_tranche,
}
CASE_ACTIONS: dict[str, Named] = {
    "plan_rent_custody": Named(blocks.plan_rent_custody),
    "release_rent": Named(blocks.release_rent, RELEASES),
    "settle_rent_release": Named(blocks.settle_rent_release),
    # the deposit back to the tenant, deductions and rent left over to the landlord: one settlement, answered
    # as a payout group even when it turned out to be the refund alone (app/payouts/results.py)
    "release_deposit": Named(blocks.release_deposit, MoneyEffect("refund", PAYOUT_OUTCOMES)),
    "request_fund_draw": Named(blocks.request_fund_draw, MoneyEffect("in", frozenset({"fund_drawn", "fund_rejected"}))),
    "release_stage": Named(blocks.release_stage, RELEASES),
    "settle_stage": Named(blocks.settle_stage),
    # release plans (app/domain/release_plan.py): the tranches an event makes due, to the seller
    "release_tranche": Named(blocks.release_tranche, RELEASES),
    "settle_tranche": Named(blocks.settle_tranche),
    "record_release_event": Named(blocks.record_release_event),
    "record_payer_account": Named(blocks.record_payer_account, MoneyEffect("in")),
    "refund_to_origin": Named(blocks.refund_to_origin, REFUNDS),
    # an overpayment found on closing goes back after the deal ended: its answer is kept on the timeline
    "refund_excess": Named(blocks.refund_excess, MoneyEffect("refund", REFUND_OUTCOMES, awaited=False)),
    "release_custody": Named(blocks.release_custody, RELEASES),
    "request_freeze": Named(blocks.request_freeze, MoneyEffect("in", frozenset({"freeze_confirmed", "freeze_failed"}))),
    "record_freeze": Named(blocks.record_freeze, MoneyEffect("in")),
    "release_freeze": Named(blocks.release_freeze, MoneyEffect("refund")),
    "request_unfreeze": Named(blocks.request_unfreeze, MoneyEffect("refund", frozenset({"unfreeze_confirmed"}))),
    "report_to_supervisor": Named(blocks.report_to_supervisor),
}


def _deal_actions(signer: AgreementSigner) -> dict[str, Named]:
    """The deal's agreement, account and single payout (answered by payout_succeeded/_failed)."""
    return {
        "sign_agreement": Named(signing(signer)),
        "request_virtual_account": Named(actions.request_virtual_account),
        "record_virtual_account": Named(actions.record_virtual_account),
        "request_payout": Named(actions.request_payout, RELEASES),
        "settle_payout": Named(actions.settle_payout),
        "release_payout_hold": Named(actions.release_payout_hold),
    }


def build_vocabulary(signer: AgreementSigner) -> Registry:
    """A new registry of every guard and action, each taking a DealContext; `signer` signs a deal's agreement
    (`sign_agreement`)."""
    registry = Registry()
    for name, rule in CASE_GUARDS.items():
        registry.guard(name)(case_guard(rule))
    for name, action in _deal_actions(signer).items():
        registry.action(name, action.money)(action.function)
    for name, block in CASE_ACTIONS.items():
        registry.action(name, block.money)(case_action(block.function))
    return registry
