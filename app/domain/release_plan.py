"""Release plans: what each tranche of a city's plan (`products.*.release`) releases out of a deal's custody
amount, and which tranches an event makes due. Pure arithmetic on integer fen.

A tranche is a share of the custody amount (`share_bps`, rounded down), a fixed `amount_fen`, or the remainder
(the custody amount less every other tranche, so it absorbs the rounding). A plan without a remainder is all
shares adding up to 100 %; its last tranche absorbs the rounding. A plan always releases exactly the custody
amount: one whose shares and fixed amounts exceed it is refused (`RELEASE_PLAN_ABOVE_CUSTODY`) before a deal is
made, so no tranche can ever pay more than custody.

Tranches are released in order. Tranche k is *due* when its event (`ReleaseRule.event_of`) and every one of the
plan's `conditions` have happened; one event may make several consecutive tranches due at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.domain.cities import ReleaseRule, Tranche
from app.domain.money import format_yuan
from app.platform.errors import ValidationError

FULL_BPS = 10_000


@dataclass(frozen=True)
class PlannedTranche:
    """One tranche of a deal's plan, as the agreement prints it."""

    index: int
    label: str
    event: str
    amount_fen: int
    share_bps: int | None  # the configured share, None for a fixed amount or the remainder
    remainder: bool
    event_label: str = ""  # the event in Chinese, as the workflow names it


def _fixed(tranche: Tranche, custody_amount_fen: int) -> int:
    if tranche.amount_fen is not None:
        return tranche.amount_fen
    return tranche.share_bps * custody_amount_fen // FULL_BPS


def _absorber(tranches: tuple[Tranche, ...]) -> int:
    """The tranche that takes what the others leave: the remainder, else the last of an all-shares plan."""
    for index, tranche in enumerate(tranches):
        if tranche.remainder:
            return index
    return len(tranches) - 1


def plan_error(rule: ReleaseRule, custody_amount_fen: int, field: str = "custody_amount") -> ValidationError | None:
    """Why the plan cannot release exactly `custody_amount_fen` (a Chinese message on the intake `field` the
    amount is typed in), or None."""
    tranches = rule.tranches
    committed = sum(_fixed(t, custody_amount_fen) for t in tranches if not t.remainder)
    if committed > custody_amount_fen:
        message = (
            f"放款计划各期合计 {format_yuan(committed)}，超过托管金额 {format_yuan(custody_amount_fen)}，"
            "请调整托管金额或放款计划"
        )
        return ValidationError(message, code="RELEASE_PLAN_ABOVE_CUSTODY", details={field: message})
    has_remainder = any(t.remainder for t in tranches)
    all_shares = sum(t.share_bps for t in tranches if t.amount_fen is None) == FULL_BPS
    if not has_remainder and not (all_shares and all(t.amount_fen is None for t in tranches)):
        message = f"放款计划各期合计 {format_yuan(committed)}，与托管金额 {format_yuan(custody_amount_fen)} 不符"
        return ValidationError(message, code="RELEASE_PLAN_INCOMPLETE", details={field: message})
    return None


def tranche_amounts(rule: ReleaseRule, custody_amount_fen: int) -> tuple[int, ...]:
    """Each tranche's amount; they add up to exactly the custody amount (else the plan is refused)."""
    refused = plan_error(rule, custody_amount_fen)
    if refused is not None:
        raise refused
    amounts = [0 if t.remainder else _fixed(t, custody_amount_fen) for t in rule.tranches]
    amounts[_absorber(rule.tranches)] += custody_amount_fen - sum(amounts)
    return tuple(amounts)


def tranche_gross(rule: ReleaseRule, custody_amount_fen: int, index: int) -> int:
    """This release's gross amount for tranche `index`, before anything is taken from it (fees on release hook
    in here)."""
    return tranche_amounts(rule, custody_amount_fen)[index]


def planned(
    rule: ReleaseRule, custody_amount_fen: int, event_labels: Mapping[str, str] | None = None
) -> tuple[PlannedTranche, ...]:
    """The deal's plan, tranche by tranche, for the agreement (events named by `event_labels`, the workflow's)."""
    labels = event_labels or {}
    amounts = tranche_amounts(rule, custody_amount_fen)
    return tuple(
        PlannedTranche(
            index,
            tranche.label,
            rule.event_of(index),
            amounts[index],
            None if tranche.remainder or tranche.amount_fen is not None else tranche.share_bps,
            tranche.remainder,
            labels.get(rule.event_of(index), rule.event_of(index)),
        )
        for index, tranche in enumerate(rule.tranches)
    )


def due_tranches(rule: ReleaseRule, released: int, happened: Iterable[str]) -> range:
    """The consecutive tranches from `released` (how many were paid or are being paid) that the events that
    `happened` make due: none until every condition happened."""
    seen = set(happened)
    if not seen.issuperset(rule.conditions):
        return range(released, released)
    end = released
    while end < len(rule.tranches) and rule.event_of(end) in seen:
        end += 1
    return range(released, end)
