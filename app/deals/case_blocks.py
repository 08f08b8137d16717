"""The products' building blocks (app/state_machine/building_blocks.py) on real deals.

Each block works on a `CaseContext`; here it gets one made from the deal: the workflow parameters the
deal's pinned city config resolves, the city's release rule, the deal's case facts (`Deal.facts`) plus the
money actually free in custody (posted balance less holds in flight) and the event's payload. After an
action the facts are saved back and its instructions carried out in the same transaction:

- payout / refund: the payouts package (`app/payouts/lifecycle.py`) makes one `Payout` per instruction,
  the amount held out of custody, the bank call queued (or left for approval). The payouts of one action
  form a *release group*: the workflow hears `payout_succeeded`/`refund_succeeded` once all of them are
  paid, `…_failed` once all are final and one failed (`app/payouts/results.py`). A retry re-sends exactly
  the failed ones. The case's `origins` are read fresh from the origins recorded with each custody credit
  (`app/payouts/origins.py`), less what refunds gave back, so 原路退回 never returns more than came in.
- freeze, unfreeze: a job asks the bank (`app/deals/bank_freeze.py`); the workflow hears `freeze_confirmed` /
  `unfreeze_confirmed` only on the bank's signed receipt (`freeze_failed` on its refusal).
- fund_draw, freeze, unfreeze, report: kept on the deal's timeline as an instruction to the fund centre,
  the bank or the supervisor; the fund centre's answer comes back as an event (a person records it, or the
  arrival of its money)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

import app.deals.actions  # noqa: F401 - the escrow actions register with this module's (bootstrap imports this one)
from app.db.models import Deal
from app.deals.bank_freeze import freeze_request, unfreeze_request
from app.deals.pinning import pinned_city
from app.deals.workflow import DealContext, fire_or_note, note
from app.domain import ledger
from app.domain.ledger import TransferSpec
from app.fees import charges
from app.ledger.repo import LedgerRepository
from app.payouts import amendments, origins, payees
from app.payouts.lifecycle import PayoutOrder, open_group, retry_failed
from app.payouts.status import PayoutPurpose
from app.platform.errors import LedgerError, WorkflowError
from app.platform.runtime import Runtime
from app.queue.jobs import enqueue
from app.state_machine import building_blocks as blocks
from app.state_machine.parameters import resolve

# read fresh every time, never saved as facts
COMPUTED = frozenset({"custody_fen", "custody_amount_fen", "arrival_fee_due_fen", "origins", "release_room_fen"})
PAYER_ROLES = frozenset({"buyer", "tenant", "owner", "applicant"})
PAYEE_ROLES = frozenset({"seller", "landlord", "contractor", "beneficiary", "developer"})
RETRY_EVENTS = frozenset({"retry_payout", "retry_refund"})
# the blocks that pay: on a retry event they re-send what failed instead of computing anew
MONEY_BLOCKS = frozenset(
    {
        blocks.release_rent,
        blocks.release_deposit,
        blocks.release_stage,
        blocks.release_tranche,
        blocks.refund_to_origin,
        blocks.release_custody,
    }
)
# the blocks that read the case's `origins` / `release_room_fen`: only these pay for loading the deal's origins
# and payouts (an arrival's `record_payer_account` does not, and it runs on the hot path of every callback)
READS_ORIGINS = frozenset(
    {blocks.refund_to_origin, blocks.refund_excess, blocks.release_custody, blocks.release_deposit}
)
READS_RELEASE_ROOM = frozenset({blocks.release_deposit})
BANK_JOBS = {"freeze": freeze_request, "unfreeze": unfreeze_request}  # asked of the bank by a job
NOTES = {
    "fund_draw": "已向公积金中心申请提取",
    "freeze": "已向银行发出冻结指令",
    "unfreeze": "已向银行发出解冻指令",
    "report": "已向住建监管平台报送",
}


def free_in_custody(session: Session, deal: Deal) -> int:
    """Posted custody balance less the holds of payouts in flight (a liability: credits are money in)."""
    repo = LedgerRepository(session)
    custody = ledger.deal_custody(deal.deal_no)
    try:
        debits, credits, debits_pending, _ = repo.totals(custody.code)
    except LedgerError as error:
        if error.code != "UNKNOWN_ACCOUNT":
            raise
        repo.ensure_account(custody, deal_id=deal.id)
        return 0
    return credits - debits - debits_pending


def case_context(
    ctx: DealContext, *, with_origins: bool = False, with_release_room: bool = False
) -> blocks.CaseContext:
    """The block's context; `origins` (what each account money came from may still get back) and
    `release_room_fen` (what the agreement still allows to be released) are read only for an action that reads
    them: no guard needs them, and an arrival's guards and action run on the hot path."""
    deal = ctx.deal
    product = pinned_city(ctx.rt, ctx.session, deal).product(deal.product)
    definition = ctx.rt.workflow(deal.workflow_id, deal.workflow_version)
    case = {
        **copy.deepcopy(deal.facts or {}),  # a copy: facts saved back must differ from what was loaded
        "custody_fen": free_in_custody(ctx.session, deal),
        "custody_amount_fen": deal.custody_amount_fen,
        "arrival_fee_due_fen": charges.arrival_fee_due(ctx.rt, ctx.session, deal) if product.fees else 0,
    }
    if with_origins:
        case["origins"] = [
            {"account": o.account, "name": o.name, "amount_fen": o.left_fen}
            for o in origins.of_deal(ctx.session, deal.id)
            if o.left_fen > 0
        ]
    if with_release_room:
        case["release_room_fen"] = payees.release_room_fen(ctx.session, deal, ctx.rt.products)
    parameters = resolve(definition.parameters, product.overrides())
    return blocks.CaseContext(parameters, case, product.release, ctx.payload, event=ctx.event)


def _save_facts(deal: Deal, case: dict[str, Any]) -> None:
    facts = {name: value for name, value in case.items() if name not in COMPUTED}
    if facts != deal.facts:  # a new dict: a JSON change; the same facts leave the deal clean (no flush)
        deal.facts = facts


def _orders(ctx: DealContext, instruction: blocks.Instruction, left: dict[str, int]) -> list[PayoutOrder]:
    """The payouts one instruction becomes. A receiving role is paid to the account the agreement (or an
    approved amendment) names; a refund to the paying party goes back to the accounts money came from, oldest
    first, each at most what it has still to get back (`left`, lowered as orders take it); an account is
    itself an origin. The payee rules (`payouts.payees`) check each order again."""
    purpose = PayoutPurpose.REFUND if instruction.kind == "refund" else PayoutPurpose.RELEASE
    if instruction.payee in PAYEE_ROLES:
        name, account = amendments.named_payee(ctx.session, ctx.deal)
        return [PayoutOrder(instruction.amount_fen, _named(name, instruction), _named(account, instruction), purpose)]
    known = origins.of_deal(ctx.session, ctx.deal.id)
    candidates = known if instruction.payee in PAYER_ROLES else [o for o in known if o.account == instruction.payee]
    orders, remaining = [], instruction.amount_fen
    for origin in candidates:
        amount = min(remaining, left.get(origin.account, origin.left_fen))
        if amount > 0:
            name = origin.name or ctx.deal.buyer_name
            orders.append(PayoutOrder(amount, _named(name, instruction), origin.account, purpose))
            left[origin.account] = left.get(origin.account, origin.left_fen) - amount
            remaining -= amount
    if remaining > 0:
        raise WorkflowError(
            "退款只能原路退回，付款账户可退金额不足",
            code="REFUND_ABOVE_ORIGIN",
            details={"payee": instruction.payee, "memo": instruction.memo, "unmatched_fen": remaining},
        )
    return orders


def _named(value: str | None, instruction: blocks.Instruction) -> str:
    if not value:
        raise WorkflowError(
            "收款方或收款账户未登记，无法划付",
            code="PAYEE_ACCOUNT_MISSING",
            details={"payee": instruction.payee, "memo": instruction.memo},
        )
    return value


def _pay(ctx: DealContext, instructions: list[blocks.Instruction]) -> None:
    """One release group: a payout (or refund) per instruction (a refund to the payer may be several, one
    per origin), made by the payouts package."""
    left: dict[str, int] = {}
    open_group(ctx, [order for instruction in instructions for order in _orders(ctx, instruction, left)])


def _hold_frozen(ctx: DealContext, instruction: blocks.Instruction) -> None:
    """A guarantee's money frozen at the bank is held for the deal (bank clearing -> custody); unfrozen, it
    goes back (custody -> bank clearing). A claim pays the beneficiary out of custody like any payout."""
    clearing = ledger.bank_clearing(ctx.deal.bank_code)
    custody = ledger.deal_custody(ctx.deal.deal_no)
    repo = LedgerRepository(ctx.session)
    repo.ensure_account(clearing)
    frozen = instruction.kind == "frozen"
    spec = TransferSpec(
        id=f"{instruction.kind}:{ctx.deal.deal_no}",
        debit_code=clearing.code if frozen else custody.code,
        credit_code=custody.code if frozen else clearing.code,
        amount_fen=instruction.amount_fen,
        code="freeze" if frozen else "unfreeze",
        deal_id=ctx.deal.id,
    )
    repo.post(spec, at=ctx.rt.clock())


def carry_out(ctx: DealContext, instructions: list[blocks.Instruction]) -> None:
    money = [i for i in instructions if i.kind in ("payout", "refund")]
    if money:
        _pay(ctx, money)
    for instruction in instructions:
        if instruction.kind in ("frozen", "unfrozen"):
            _hold_frozen(ctx, instruction)
        if instruction.kind in BANK_JOBS:
            kind, payload = BANK_JOBS[instruction.kind](ctx.deal.id, instruction.amount_fen)
            enqueue(ctx.session, kind, payload, now=ctx.rt.clock(), bank_code=ctx.deal.bank_code)
    for instruction in instructions:
        if instruction.kind in NOTES:
            note(
                ctx,
                f"instruction:{instruction.kind}",
                {
                    "label": f"{NOTES[instruction.kind]}：{instruction.memo}",
                    "amount_fen": instruction.amount_fen,
                },
            )


def case_guard(block: Callable[[blocks.CaseContext], bool]) -> Callable[[DealContext], bool]:
    """A product rule on a CaseContext as a guard on the deal (the one place the two contexts meet)."""

    def guard(ctx: DealContext) -> bool:
        return block(case_context(ctx))

    return guard


def case_action(block: Callable[[blocks.CaseContext], None]) -> Callable[[DealContext], None]:
    """A product block on a CaseContext as an action on the deal: facts saved back, instructions carried out."""

    pays = block in MONEY_BLOCKS

    def action(ctx: DealContext) -> None:
        if pays and ctx.event in RETRY_EVENTS:  # re-send exactly what failed, as a new group
            retry_failed(ctx)
            return
        if block is blocks.refund_to_origin:  # the deal failed: fees its config refunds go back with the money
            charges.return_arrival_fees(ctx.rt, ctx.session, ctx.deal)
        case = case_context(ctx, with_origins=block in READS_ORIGINS, with_release_room=block in READS_RELEASE_ROOM)
        block(case)
        _save_facts(ctx.deal, case.case)
        carry_out(ctx, case.instructions)
        if pays and not any(i.kind in ("payout", "refund") for i in case.instructions):
            _nothing_to_pay(ctx, block)

    return action


def _nothing_to_pay(ctx: DealContext, block: Callable[[blocks.CaseContext], None]) -> None:
    """A settlement with nothing left to pay (深圳: a deposit within the exempt month, all rent released) is
    complete at once: its success event is fired by a job right after this transaction. A claim or release
    of an empty custody is refused instead: paying nothing would look like paying."""
    if block is blocks.release_custody:
        raise WorkflowError("存管账户没有可划付的资金", code="NOTHING_TO_PAY")
    event = "refund_succeeded" if block is blocks.refund_to_origin else "payout_succeeded"
    note(ctx, "nothing_to_pay", {"label": "无需划付，结算即完成"})
    enqueue(ctx.session, "settle_empty_release", {"deal_id": ctx.deal.id, "event": event}, now=ctx.rt.clock())


def settle_empty_release(rt: Runtime, payload: dict[str, Any]) -> None:
    """Job: the success event of a settlement that had nothing to pay."""
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, payload["deal_id"])
        assert deal is not None, "job refers to a missing deal"
        fire_or_note(DealContext(rt, uow.session, deal, "system:worker"), payload["event"], {"amount_fen": 0})
        uow.commit()


def arrival_event(rt: Runtime, deal: Deal) -> str:
    """The event an arrival fires: `fund_drawn` while a deal waits for the provident fund centre's money
    (the only money expected then), `funds_arrived` otherwise."""
    events = rt.workflow(deal.workflow_id, deal.workflow_version).events_from(deal.state)
    return "fund_drawn" if "fund_drawn" in events and "funds_arrived" not in events else "funds_arrived"


def arrival_coverage(ctx: DealContext, event: str) -> dict[str, int]:
    """For an arrival's timeline row: the money free in custody after it (`held_fen`) and what the deal's
    arrival guard waits for (`due_fen`), when the state's `event` transitions have such a guard; else nothing.
    The page shows what arrived against what was due instead of a bare 足额 (app/deals/arrival_text.py)."""
    definition = ctx.rt.workflow(ctx.deal.workflow_id, ctx.deal.workflow_version)
    guards = [t.guard for t in definition.transitions if t.source == ctx.deal.state and t.event == event and t.guard]
    case = None
    for guard in guards:
        case = case or case_context(ctx)
        due = blocks.covered_target(guard, case)
        if due is not None:
            return {"held_fen": int(case.case["custody_fen"]), "due_fen": due}
    return {}
