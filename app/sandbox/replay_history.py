"""A real deal's recorded history as the replay acts it out: its timeline (DealEvent) and its bank notifications
(the arrivals with their amounts), in order, each with its time and - for a person's step - the role of who took
it. Read from the platform's database; nothing of it is written anywhere."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import BankNotification, Deal, DealEvent, Payout, User
from app.deals import service as deals
from app.deals.contract_import import EVENT as IMPORTED
from app.payouts.status import FINAL

ARRIVALS = frozenset({"funds_arrived", "fund_drawn"})
PAYMENT_RESULTS = frozenset({"payout_succeeded", "payout_failed", "refund_succeeded", "refund_failed"})
FAILURES = frozenset({"payout_failed", "refund_failed"})
PERSON_EVENTS = frozenset({"confirm", "title_transferred", "freeze", "unfreeze", *deals.MANUAL_ACTIONS})
TIMER_ACTOR = "system:timer"


class NotReplayable(Exception):
    """The real deal's history cannot be acted out (why, in Chinese)."""


@dataclass(frozen=True)
class Act:
    """One recorded step to act out: a person's event (with their role), a timer's, or money arriving."""

    at: datetime
    kind: str  # person | timer | arrival
    event: str
    label: str
    position: int  # where it is in the timeline (the bank's later payment results are counted from there)
    role: str = ""
    reason: str = ""
    inputs: dict[str, str] = field(default_factory=dict)
    amount_fen: int = 0
    payer_account: str = ""


@dataclass(frozen=True)
class History:
    acts: list[Act]
    results: list[tuple[int, str]]  # (position, event) of each payment result the bank gave, in order
    imported: bool = False  # the deal entered by the stock-contract import (`flask contracts import`)
    answered: int = 0  # how many of its payouts the bank answered (the later ones are still in flight)


def _roles(session: Session, events: list[DealEvent]) -> dict[str, str]:
    names = {e.actor.removeprefix("user:") for e in events if e.actor.startswith("user:")}
    if not names:
        return {}
    rows = session.execute(select(User.username, User.role).where(User.username.in_(names)))
    return {f"user:{name}": role for name, role in rows}


def _notifications(session: Session, deal: Deal) -> list[tuple[datetime, dict[str, Any]]]:
    """The arrivals the bank notified for the deal's account, oldest first, with their bodies."""
    account = deal.virtual_account
    if account is None or not account.account_no:
        return []
    rows = session.scalars(
        select(BankNotification)
        .where(
            BankNotification.bank_code == account.bank_code,
            BankNotification.account_no == account.account_no,
            BankNotification.type == "funds_arrived",
        )
        .order_by(BankNotification.received_at, BankNotification.id)
    )
    found = []
    for row in rows:
        try:
            found.append((row.received_at, json.loads(row.raw_body)))
        except ValueError:
            continue
    return found


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _person(event: DealEvent, position: int, role: str) -> Act:
    detail = event.detail or {}
    inputs = {"deduction": _yuan(int(detail["deduction_fen"]))} if "deduction_fen" in detail else {}
    label = str(detail.get("label") or event.event)
    reason = str(detail.get("reason") or f"重放：{label}")
    return Act(event.created_at, "person", event.event, label, position, role, reason, inputs)


def read_history(session: Session, deal: Deal) -> History:
    """The acts of `deal`'s history (its import, if it entered so, is its creation: not an act); NotReplayable
    when it cannot be acted out."""
    events = list(session.scalars(select(DealEvent).where(DealEvent.deal_id == deal.id).order_by(DealEvent.id)))
    roles = _roles(session, events)
    arrivals = _notifications(session, deal)
    by_reference = {str(body.get("bank_reference")): (at, body) for at, body in arrivals}
    used: set[str] = set()
    acts: list[Act] = []
    results: list[tuple[int, str]] = []
    for position, event in enumerate(events):
        detail = event.detail or {}
        if event.from_state is None:  # the creation
            continue
        if event.event in PAYMENT_RESULTS and event.actor.startswith("bank:"):
            results.append((position, event.event))
        elif event.event in ARRIVALS and event.actor.startswith("bank:"):
            reference = str(detail.get("bank_reference"))
            _, body = by_reference.get(reference, (None, {}))
            used.add(reference)
            amount = int(body.get("amount_fen") or detail.get("amount_fen") or 0)
            if amount <= 0:
                raise NotReplayable(f"第 {position + 1} 条记录的入账金额不明")
            payer = str(body.get("payer_account") or "")
            acts.append(
                Act(event.created_at, "arrival", event.event, "入账", position, amount_fen=amount, payer_account=payer)
            )
        elif event.actor == TIMER_ACTOR:
            acts.append(Act(event.created_at, "timer", event.event, str(detail.get("label") or event.event), position))
        elif event.actor.startswith("user:") and event.event in PERSON_EVENTS:
            acts.append(_person(event, position, roles.get(event.actor, "ops")))
    for at, body in arrivals:  # money the bank notified that reached no timeline (suspense): in its time
        if str(body.get("bank_reference")) in used:
            continue
        position = next((a.position for a in acts if a.at > at), len(events))
        act = Act(
            at, "arrival", "funds_arrived", "入账（未入存管单）", position, amount_fen=int(body.get("amount_fen") or 0)
        )
        acts.append(act)
    acts.sort(key=lambda a: (a.position, a.at))
    answered = session.scalar(
        select(func.count()).select_from(Payout).where(Payout.deal_id == deal.id, Payout.status.in_(FINAL))
    )
    return History(acts, results, imported=any(e.event == IMPORTED for e in events), answered=answered or 0)


def failing_next(history: History, position: int) -> bool:
    """Whether the bank's next payment result after `position` was a failure (the sandbox bank then fails it)."""
    return next((event for at, event in history.results if at > position), "") in FAILURES
