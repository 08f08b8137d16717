"""Timeline wording composed from the facts. An arrival's line: what arrived against what was due. The
arrival's row keeps the money free in custody after it (`held_fen`) and what the deal's arrival guard waited
for (`due_fen`, app/deals/case_blocks.py `arrival_coverage`); the line never says 足额 when the two differ,
and says what becomes of money paid beyond what was due, as the deal's workflow handles it. A transition
that sends an overpayment back (`refund_excess`) mentions it only when a refund was made (a published label
such as 放款成功，存管结清；多付款项原路退回 loses its last clause when nothing was paid too much)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.domain.money import format_yuan
from app.state_machine.definition import WorkflowDefinition

# the actions that send money paid beyond what was due back by original route when the deal is released
EXCESS_REFUNDED_BY = frozenset({"refund_excess", "release_custody"})


@dataclass(frozen=True)
class ArrivalLine:
    label: str
    amounts: str


def excess_fate(definition: WorkflowDefinition) -> str:
    """What the workflow does with money beyond what was due: sent back when the deal is settled, or kept in custody."""
    refunds = any(EXCESS_REFUNDED_BY & set(t.actions) for t in definition.transitions)
    return "结清时原路退回" if refunds else "留在存管账户"


def arrival_line(label: str, detail: Mapping[str, Any], fate: str) -> ArrivalLine | None:
    """The row's label and amounts, or None for a row without the figures (older rows, other events)."""
    amount, held, due = detail.get("amount_fen"), detail.get("held_fen"), detail.get("due_fen")
    if not all(isinstance(value, int) for value in (amount, held, due)):
        return None
    assert isinstance(amount, int) and isinstance(held, int) and isinstance(due, int)
    arrived = f"到账 {format_yuan(amount)}"
    if held != amount:
        arrived += f"，存管余额 {format_yuan(held)}"
    due_word = "应付" if held == amount else "应有"
    if held > due:
        excess = f"多出 {format_yuan(held - due)} {fate}"
        return ArrivalLine(label.replace("足额", ""), f"{arrived}（{due_word} {format_yuan(due)}，{excess}）")
    if held < due:
        return ArrivalLine(label, f"{arrived}（{due_word} {format_yuan(due)}，尚差 {format_yuan(due - held)}）")
    return ArrivalLine(label, arrived)


def arrival_lines(definition: WorkflowDefinition, events: Iterable[Any]) -> dict[int, ArrivalLine]:
    """The arrival lines of a deal's timeline rows (DealEvent), by row id."""
    fate = excess_fate(definition)
    lines = {}
    for event in events:
        detail = event.detail or {}
        line = arrival_line(str(detail.get("label") or ""), detail, fate)
        if line is not None:
            lines[event.id] = line
    return lines


def excess_clause_labels(
    definition: WorkflowDefinition, events: Iterable[Any], refunds_made_at: Iterable[datetime]
) -> dict[int, str]:
    """Labels of rows (DealEvent) of transitions that refund an overpayment (EXCESS_REFUNDED_BY) after which no
    refund was made (`refunds_made_at`: when the deal's refund payouts were made), without their overpayment clause."""
    refunds = list(refunds_made_at)
    labels = {}
    for event in events:
        taken = [
            t
            for t in definition.transitions
            if (t.source, t.event, t.target) == (event.from_state, event.event, event.to_state)
        ]
        label = str((event.detail or {}).get("label") or "")
        if not any(EXCESS_REFUNDED_BY & set(t.actions) for t in taken) or any(at >= event.created_at for at in refunds):
            continue
        kept = [part for part in label.split("；") if "多付" not in part]
        if kept and len(kept) < len(label.split("；")):
            labels[event.id] = "；".join(kept)
    return labels
