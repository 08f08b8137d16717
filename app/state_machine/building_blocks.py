"""The products' rules: guards and actions on a `CaseContext` (resale and government escrow, rent,
provident fund, renovation, intent deposit, guarantee, government reporting).

A `CaseContext` holds the workflow parameters resolved for the city, the city's release rule, the case's
facts (amounts in fen, counters; `custody_fen` is the money free in custody: the posted balance less the
holds of payouts in flight; `custody_amount_fen` what the agreement puts in custody) and the event payload.
Actions never move money themselves: they compute amounts and append `Instruction`s that the caller carries
out (bank jobs and ledger holds in the services). Workflows name them through the vocabulary
(app/deals/vocabulary.py), which adapts each to the deal's context in one place (app/deals/case_blocks.py:
case_guard, case_action)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.domain.cities import ReleaseRule
from app.domain.release_plan import due_tranches, tranche_gross
from app.domain.rent import plan_rent
from app.platform.errors import WorkflowError


@dataclass(frozen=True)
class Instruction:
    kind: str  # payout | refund | fund_draw | freeze | unfreeze | frozen | unfrozen | report
    amount_fen: int
    payee: str  # a party role (landlord, tenant, owner, contractor, developer, beneficiary…) or an account number
    memo: str


@dataclass
class CaseContext:
    params: Mapping[str, Any]
    case: dict[str, Any]
    release: ReleaseRule | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    instructions: list[Instruction] = field(default_factory=list)
    event: str = ""  # the event being fired (a release plan's tranches are due on events)

    def fact(self, name: str) -> Any:
        if name not in self.case:
            raise WorkflowError(f"缺少业务数据：{name}", code="CASE_FACT_MISSING", details={"fact": name})
        return self.case[name]

    def emit(self, kind: str, amount_fen: int, payee: str, memo: str) -> None:
        if amount_fen > 0:
            self.instructions.append(Instruction(kind, amount_fen, payee, memo))


def _rent_available(ctx: CaseContext) -> int:
    return ctx.fact("custody_fen") - ctx.case.get("deposit_custody_fen", 0)


def _stage_amount(ctx: CaseContext, index: int) -> int:
    """Stage `index` of the release plan: its gross amount out of the custody amount (app/domain/release_plan.py)."""
    return tranche_gross(_plan(ctx), ctx.fact("custody_amount_fen"), index)


def _plan(ctx: CaseContext) -> ReleaseRule:
    if ctx.release is None:
        raise WorkflowError("城市配置未设放款计划（release）", code="RELEASE_PLAN_MISSING")
    return ctx.release


def _happened(ctx: CaseContext) -> list[str]:
    """The release events recorded so far, with the one being fired."""
    seen = list(ctx.case.get("release_events", []))
    return seen if not ctx.event or ctx.event in seen else [*seen, ctx.event]


def _due(ctx: CaseContext) -> range:
    return due_tranches(_plan(ctx), ctx.case.get("tranches_released", 0), _happened(ctx))


def fully_funded(ctx: CaseContext) -> bool:
    """The money free in custody covers the custody amount the agreement names, and the fees the payer pays on
    arrival that are not charged yet (`arrival_fee_due_fen`)."""
    return ctx.fact("custody_fen") >= ctx.fact("custody_amount_fen") + ctx.case.get("arrival_fee_due_fen", 0)


def has_custody_funds(ctx: CaseContext) -> bool:
    return ctx.fact("custody_fen") > 0


def move_in_funded(ctx: CaseContext) -> bool:
    return ctx.fact("custody_fen") >= ctx.fact("custody_per_installment_fen") + ctx.fact("deposit_custody_fen")


def rent_covered(ctx: CaseContext) -> bool:
    return _rent_available(ctx) >= ctx.fact("custody_per_month_fen")


def covered_target(guard: str, ctx: CaseContext) -> int | None:
    """What money free in custody an arrival guard waits for (`fully_funded`, `move_in_funded`, `rent_covered`,
    negated or not): the amount due, shown against what arrived; None for any other guard."""
    name = guard.removeprefix("!")
    if name == "fully_funded":
        return int(ctx.fact("custody_amount_fen") + ctx.case.get("arrival_fee_due_fen", 0))
    if name == "move_in_funded":
        return int(ctx.fact("custody_per_installment_fen") + ctx.fact("deposit_custody_fen"))
    if name == "rent_covered":
        return int(ctx.fact("custody_per_month_fen") + ctx.case.get("deposit_custody_fen", 0))
    return None


def last_rent_month(ctx: CaseContext) -> bool:
    """The release under way pays the lease's last month."""
    return ctx.case.get("months_released", 0) + 1 >= ctx.fact("lease_months")


def tranche_due(ctx: CaseContext) -> bool:
    """The event being fired (with those recorded before) makes the plan's next tranche due."""
    return len(_due(ctx)) > 0


def last_tranche(ctx: CaseContext) -> bool:
    """The release under way pays the plan's last tranche."""
    released = ctx.case.get("tranches_released", 0) + ctx.case.get("tranches_in_flight", 0)
    return released >= len(_plan(ctx).tranches)


def last_stage(ctx: CaseContext) -> bool:
    assert ctx.release is not None, "renovation escrow needs the city's release rule"
    return ctx.case.get("stages_released", 0) + 1 >= len(ctx.release.tranches)


def plan_rent_custody(ctx: CaseContext) -> None:
    plan = plan_rent(
        ctx.fact("monthly_rent_fen"),
        ctx.fact("months_per_installment"),
        ctx.fact("deposit_fen"),
        ctx.params["rent_months_exempt"],
        ctx.params["deposit_months_exempt"],
    )
    ctx.case.update(
        custody_per_installment_fen=plan.custody_per_installment_fen,
        custody_per_month_fen=plan.custody_per_month_fen,
        deposit_custody_fen=plan.deposit_custody_fen,
    )


def release_rent(ctx: CaseContext) -> None:
    ctx.emit("payout", ctx.fact("custody_per_month_fen"), "landlord", "月租金划付")


def settle_rent_release(ctx: CaseContext) -> None:
    ctx.case["months_released"] = ctx.case.get("months_released", 0) + 1


def release_deposit(ctx: CaseContext) -> None:
    """End of lease: the deposit back to the tenant less agreed deductions; rent left over to the landlord, as
    far as the agreement still allows releases (`release_room_fen`); any more was paid in too much and goes
    back by original route."""
    deposit = ctx.case.get("deposit_custody_fen", 0)
    deduction = ctx.payload.get("deduction_fen", 0)
    if not isinstance(deduction, int) or not 0 <= deduction <= deposit:
        raise WorkflowError("押金扣款须为不超过押金的非负整数（分）", code="DEDUCTION_INVALID")
    leftover = _rent_available(ctx)
    rent = max(0, min(leftover, ctx.fact("release_room_fen") - deduction))
    ctx.emit("refund", deposit - deduction, "tenant", "押金退还")
    ctx.emit("payout", deduction, "landlord", "押金扣款")
    ctx.emit("payout", rent, "landlord", "剩余租金结清")
    _refund_latest_first(ctx, leftover - rent)


def request_fund_draw(ctx: CaseContext) -> None:
    amount = min(ctx.fact("monthly_rent_fen"), ctx.params["monthly_draw_cap_fen"])
    ctx.emit("fund_draw", amount, "custody", "公积金提取支付房租")


def release_stage(ctx: CaseContext) -> None:
    index = ctx.case.get("stages_released", 0)
    assert ctx.release is not None, "renovation escrow needs the city's release rule"
    label = ctx.release.tranches[index].label
    ctx.emit("payout", _stage_amount(ctx, index), "contractor", f"装修款分阶段释放：{label}")


def settle_stage(ctx: CaseContext) -> None:
    ctx.case["stages_released"] = ctx.case.get("stages_released", 0) + 1


def record_release_event(ctx: CaseContext) -> None:
    """A release event that makes no tranche due yet (a condition still missing): kept for later."""
    ctx.case["release_events"] = _happened(ctx)


def release_tranche(ctx: CaseContext) -> None:
    """Pay the seller every tranche the event makes due, each its gross amount out of the custody amount, never
    more than is free in custody; one payout per tranche, one release group."""
    record_release_event(ctx)
    due = _due(ctx)
    if not due:
        raise WorkflowError("放款条件尚未满足，本期款项不能释放", code="TRANCHE_NOT_DUE")
    plan, free = _plan(ctx), ctx.fact("custody_fen")
    for index in due:
        amount = min(tranche_gross(plan, ctx.fact("custody_amount_fen"), index), free)
        ctx.emit("payout", amount, "seller", f"分期放款：{plan.tranches[index].label}")
        free -= amount
    ctx.case["tranches_in_flight"] = len(due)


def settle_tranche(ctx: CaseContext) -> None:
    """The release group was paid: its tranches count as released."""
    ctx.case["tranches_released"] = ctx.case.get("tranches_released", 0) + ctx.case.pop("tranches_in_flight", 0)


def record_payer_account(ctx: CaseContext) -> None:
    """An arrival must say where it came from: refunds may only go back there (原路退回). The origin itself is
    recorded with the custody credit, in whatever state the deal is; the case reads them as `origins`."""
    account, amount = ctx.payload.get("payer_account"), ctx.payload.get("amount_fen")
    if not isinstance(account, str) or not account or not isinstance(amount, int) or amount <= 0:
        raise WorkflowError("到账通知缺少付款账户或金额", code="ARRIVAL_ORIGIN_MISSING")


def refund_to_origin(ctx: CaseContext) -> None:
    """Refund the custody balance to the accounts it came from, each at most what it paid in."""
    remaining = ctx.fact("custody_fen")
    for origin in ctx.case.get("origins", []):
        amount = min(remaining, origin["amount_fen"])
        ctx.emit("refund", amount, origin["account"], "原路退回")
        remaining -= amount
    if remaining > 0:
        raise WorkflowError(
            "有资金来源不明，不能原路退回", code="REFUND_ORIGIN_UNKNOWN", details={"unmatched_fen": remaining}
        )


def refund_excess(ctx: CaseContext) -> None:
    """After the agreed release: whatever is still in custody was paid in too much; it goes back to the
    latest arrivals' accounts first (the overpayment is the last money in)."""
    _refund_latest_first(ctx, ctx.fact("custody_fen"))


def _refund_latest_first(ctx: CaseContext, amount_fen: int) -> None:
    remaining = amount_fen
    for origin in reversed(ctx.case.get("origins", [])):
        amount = min(remaining, origin["amount_fen"])
        ctx.emit("refund", amount, origin["account"], "多付款项原路退回")
        remaining -= amount


def release_custody(ctx: CaseContext) -> None:
    """Release to the payee what the agreement puts in custody, never more; anything paid in beyond it goes
    back by original route in the same group (an intent deposit of 50,000 paid 70,000: 50,000 to the
    developer, 20,000 back)."""
    free = ctx.fact("custody_fen")
    agreed = min(free, ctx.fact("custody_amount_fen"))
    ctx.emit("payout", agreed, ctx.fact("payee"), "存管资金释放")
    _refund_latest_first(ctx, free - agreed)


def request_freeze(ctx: CaseContext) -> None:
    ctx.emit("freeze", ctx.fact("guarantee_fen"), "owner", "担保资金冻结")


def record_freeze(ctx: CaseContext) -> None:
    """The bank froze the applicant's money for the guarantee: it is held for the deal from now on."""
    frozen = ctx.payload.get("amount_fen", ctx.fact("guarantee_fen"))
    ctx.case["frozen_fen"] = frozen
    ctx.emit("frozen", frozen, "owner", "担保资金冻结")


def release_freeze(ctx: CaseContext) -> None:
    """The bank unfroze the money: what the deal still holds is the applicant's own again."""
    ctx.emit("unfrozen", ctx.fact("custody_fen"), "owner", "担保资金解冻")


def request_unfreeze(ctx: CaseContext) -> None:
    ctx.emit("unfreeze", ctx.fact("frozen_fen"), "owner", "担保资金解冻")


def report_to_supervisor(ctx: CaseContext) -> None:
    ctx.emit("report", ctx.fact("custody_amount_fen"), "supervisor", "向住建监管平台报送")
