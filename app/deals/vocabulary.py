"""The workflow vocabulary: every guard and action a workflow definition may name, listed here once.

`build_vocabulary` is called at start-up (app.platform.bootstrap.build_registry; the city sandbox calls it
with its own signer) and its registry lives on the Runtime; importing a module registers nothing. Every
registered callable takes the deal's context (`DealContext`); the products' pure rules, written on a
`CaseContext` (app.state_machine.building_blocks), are adapted to it by `case_guard`/`case_action`."""

from __future__ import annotations

from collections.abc import Callable

from app.deals import actions
from app.deals.actions import AgreementSigner, signing
from app.deals.case_blocks import case_action, case_guard
from app.state_machine import building_blocks as blocks
from app.state_machine.building_blocks import CaseContext
from app.state_machine.registry import Action, Registry

# the products' rules, written on a CaseContext, by the names workflows use
CASE_GUARDS: dict[str, Callable[[CaseContext], bool]] = {
    "fully_funded": blocks.fully_funded,
    "has_custody_funds": blocks.has_custody_funds,
    "move_in_funded": blocks.move_in_funded,
    "rent_covered": blocks.rent_covered,
    "last_rent_month": blocks.last_rent_month,
    "last_stage": blocks.last_stage,
}
CASE_ACTIONS: dict[str, Callable[[CaseContext], None]] = {
    "plan_rent_custody": blocks.plan_rent_custody,
    "release_rent": blocks.release_rent,
    "settle_rent_release": blocks.settle_rent_release,
    "release_deposit": blocks.release_deposit,
    "request_fund_draw": blocks.request_fund_draw,
    "release_stage": blocks.release_stage,
    "settle_stage": blocks.settle_stage,
    "record_payer_account": blocks.record_payer_account,
    "refund_to_origin": blocks.refund_to_origin,
    "refund_excess": blocks.refund_excess,
    "release_custody": blocks.release_custody,
    "request_freeze": blocks.request_freeze,
    "record_freeze": blocks.record_freeze,
    "release_freeze": blocks.release_freeze,
    "request_unfreeze": blocks.request_unfreeze,
    "report_to_supervisor": blocks.report_to_supervisor,
}


def _deal_actions(signer: AgreementSigner) -> dict[str, Action]:
    """The deal's agreement, account and single payout."""
    return {
        "sign_agreement": signing(signer),
        "request_virtual_account": actions.request_virtual_account,
        "record_virtual_account": actions.record_virtual_account,
        "request_payout": actions.request_payout,
        "settle_payout": actions.settle_payout,
        "release_payout_hold": actions.release_payout_hold,
    }


def build_vocabulary(signer: AgreementSigner) -> Registry:
    """A new registry of every guard and action, each taking a DealContext; `signer` signs a deal's agreement
    (`sign_agreement`)."""
    registry = Registry()
    for name, rule in CASE_GUARDS.items():
        registry.guard(name)(case_guard(rule))
    for name, action in _deal_actions(signer).items():
        registry.action(name)(action)
    for name, block in CASE_ACTIONS.items():
        registry.action(name)(case_action(block))
    return registry
