"""What a replay compares, read the same way from the platform's database (the real deal) and from the sandbox's
(the deal replayed under the draft): the deal's state path, its final state, the fees charged and each release or
refund with its payee - by role (the agreement's payee, the paying party, the account the money came from) and
masked account, never the account itself - and the verdict: 相同 / 路径不同 / 金额不同 / 收款方不同 / 无法重放."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.ledger_models import LedgerTransfer
from app.db.models import Deal, DealEvent, Payout
from app.domain.money import format_yuan
from app.domain.pii_mask import mask_card, normalize_card
from app.payouts.status import PayoutStatus
from app.state_machine.definition import WorkflowDefinition

SAME, PATH, AMOUNT, PAYEE, FAILED = "相同", "路径不同", "金额不同", "收款方不同", "无法重放"
VERDICTS = (SAME, PATH, AMOUNT, PAYEE, FAILED)
NOTED_LABEL = "已记录，未触发流转"  # app.deals.workflow.fire_or_note: an event the state did not take
PURPOSES = {"release": "放款", "refund": "退款", "return": "退回"}


@dataclass(frozen=True)
class Payment:
    """A release or refund as compared: what it is, the net amount, its fees, to whom (role, masked account)."""

    purpose: str
    amount_fen: int
    fee_fen: int
    role: str
    masked: str

    def as_json(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "amount_fen": self.amount_fen, "fee_fen": self.fee_fen, "role": self.role}


@dataclass(frozen=True)
class Outcome:
    """A deal as the replay compares it."""

    path: tuple[tuple[str, str, str], ...]  # (event, from, to) of every transition taken, in order
    states: tuple[str, ...]  # the states it went through, as its workflow names them (repeats collapsed)
    final: str
    final_label: str
    fees_fen: int
    payments: tuple[Payment, ...]


def _role(account: str, deal: Deal, payer_label: str, payee_label: str, origins: Collection[str]) -> str:
    digits = normalize_card(account)
    if deal.seller_bank_account and digits == normalize_card(deal.seller_bank_account):
        return payee_label
    if deal.buyer_bank_account and digits == normalize_card(deal.buyer_bank_account):
        return payer_label
    if digits in {normalize_card(o) for o in origins}:
        return "原付款账户"
    return "其他账户"


def _fees(session: Session, deal: Deal) -> int:
    """Fees moved to fee income, less those given back (`app.fees.status.deal_fees` reads them the same way)."""
    total = 0
    for transfer in session.scalars(select(LedgerTransfer).where(LedgerTransfer.deal_id == deal.id)):
        parts = transfer.id.split(":")
        if transfer.code == "fee" and parts[0] == "fee":
            total += transfer.amount_fen
        elif transfer.code == "reversal" and parts[0] == "fee" and parts[-1] == "refund":
            total -= transfer.amount_fen
    return total


def transitions(events: list[DealEvent], definition: WorkflowDefinition) -> list[tuple[str, str, str]]:
    """The transitions a timeline shows (creation, notes, freezes and approvals left out)."""
    edges = {(t.source, t.event, t.target) for t in definition.transitions}
    return [
        (e.event, e.from_state or "", e.to_state)
        for e in events
        if (e.from_state, e.event, e.to_state) in edges and (e.detail or {}).get("label") != NOTED_LABEL
    ]


def read_outcome(
    session: Session,
    deal: Deal,
    definition: WorkflowDefinition,
    parties: tuple[str, str],
    origins: Collection[str],
) -> Outcome:
    """The deal's outcome in `session`; `origins` are the accounts money came from (the sandbox's parties and
    payers have accounts of the real ones' masked shape, so the masks compare)."""
    events = list(session.scalars(select(DealEvent).where(DealEvent.deal_id == deal.id).order_by(DealEvent.id)))
    path = transitions(events, definition)
    states = [events[0].to_state] if events else [definition.initial]
    for _, _, target in path:
        if target != states[-1]:
            states.append(target)
    payouts = session.scalars(
        select(Payout).where(Payout.deal_id == deal.id, Payout.status != PayoutStatus.FAILED).order_by(Payout.id)
    )
    payments = []
    for payout in payouts:
        role = _role(payout.payee_account, deal, *parties, origins)
        payments.append(
            Payment(payout.purpose, payout.amount_fen, payout.fee_fen, role, mask_card(payout.payee_account))
        )
    return Outcome(
        path=tuple(path),
        states=tuple(definition.label(s) for s in states),
        final=deal.state,
        final_label=definition.label(deal.state),
        fees_fen=_fees(session, deal),
        payments=tuple(payments),
    )


def _signed(fen: int) -> str:
    return ("+" if fen > 0 else "") + format_yuan(fen)


def _nth(number: int, was: Payment | None, now: Payment | None) -> tuple[str, str, str]:
    """("第 n 笔放款", before, after); when the two are not the same kind: ("第 n 笔", "放款 …", "退回 …")."""
    kinds = {PURPOSES.get(p.purpose, "付款") for p in (was, now) if p is not None}
    before = format_yuan(was.amount_fen) if was else "无"
    after = format_yuan(now.amount_fen) if now else "无"
    if len(kinds) == 1:
        return f"第 {number} 笔{kinds.pop()}", before, after
    assert was is not None and now is not None  # two kinds: both are there
    return (
        f"第 {number} 笔",
        f"{PURPOSES.get(was.purpose, '付款')} {before}",
        f"{PURPOSES.get(now.purpose, '付款')} {after}",
    )


def amount_differences(real: Outcome, replayed: Outcome) -> list[str]:
    """Each amount that differs, in yuan: the fees charged, then each release, refund or return by its order."""
    found = []
    if real.fees_fen != replayed.fees_fen:
        diff = _signed(replayed.fees_fen - real.fees_fen)
        found.append(f"收费：{format_yuan(real.fees_fen)} → {format_yuan(replayed.fees_fen)}（{diff}）")
    for number in range(max(len(real.payments), len(replayed.payments))):
        was = real.payments[number] if number < len(real.payments) else None
        now = replayed.payments[number] if number < len(replayed.payments) else None
        if was is not None and now is not None and (was.purpose, was.amount_fen) == (now.purpose, now.amount_fen):
            continue
        which, before, after = _nth(number + 1, was, now)
        if was is None or now is None or was.purpose == now.purpose:
            delta = (now.amount_fen if now else 0) - (was.amount_fen if was else 0)
            found.append(f"{which}：{before} → {after}（{_signed(delta)}）")
        else:
            found.append(f"{which}：{before} → {after}")
    return found


def payee_differences(real: Outcome, replayed: Outcome) -> list[str]:
    found = []
    for number, (was, now) in enumerate(zip(real.payments, replayed.payments, strict=False), 1):
        if (was.role, was.masked) != (now.role, now.masked):
            which = _nth(number, was, now)[0]
            found.append(f"{which}：{was.role} {was.masked} → {now.role} {now.masked}")
    return found


def verdict(real: Outcome, replayed: Outcome) -> tuple[str, list[str], list[str]]:
    """(verdict, amount differences, payee differences): the path first, then amounts, then payees."""
    amounts, payees = amount_differences(real, replayed), payee_differences(real, replayed)
    if real.path != replayed.path or real.final != replayed.final:
        return PATH, amounts, payees
    if amounts:
        return AMOUNT, amounts, payees
    if payees:
        return PAYEE, amounts, payees
    return SAME, amounts, payees


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "states": list(outcome.states),
        "final": outcome.final,
        "final_label": outcome.final_label,
        "fees_fen": outcome.fees_fen,
        "payments": [p.as_json() | {"masked": p.masked} for p in outcome.payments],
    }
