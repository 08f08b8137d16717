"""Fees as a city configures them (`products.<p>.fees`): what each costs, who pays, when it is charged and what
happens to it when the deal fails. Pure: integer fen, no storage.

Rules (docs/architecture.md, *Fees*):
- The base of a fee is what the deal's agreement releases in all (the custody amount; the whole contract for
  rent products). A rate is `base × bps / 10 000`, rounded half up to the fen, then clamped to `min_fen` and
  `max_fen`; a fixed fee is its amount. No fee exceeds its base.
- `charge_on: "release"` — paid by the receiving party (seller, landlord) out of each release: a release of
  `gross` pays the payee `gross − fee` and moves the fee to the fee income account in the same ledger batch as
  the payout's posting. With several releases (tranches, monthly rent) each pays its pro-rata share of the fee,
  cumulatively rounded so that the shares of releases adding up to the base add up to the fee exactly. A
  release the bank does not pay charges nothing; its retry charges the same share once.
- `charge_on: "arrival"` — paid by the paying party (buyer), who then pays custody + fee into custody: the fee
  moves to fee income on the arrival that makes the deal fully funded.
- `on_failure` — a fee charged on arrival when the deal fails (cancelled, terminated, refunded): `refund`
  returns it to custody so it goes back with the refund; `keep` keeps it. A release fee is charged only with a
  paid release, so a failed deal never pays one (`on_failure` is `refund` for them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.domain.money import format_yuan, to_chinese_upper

PAYER_LABELS = {
    "buyer": "买方",
    "seller": "卖方",
    "tenant": "承租方",
    "landlord": "出租方",
    "owner": "业主",
    "platform": "存管平台",
}
CHARGE_ON_LABELS = {"arrival": "资金存入时", "release": "资金释放时"}
WHEN_TEXTS = {
    "release": "从每笔释放给{payer}的款项中按释放比例扣收，释放未成功的不收取",
    "arrival": "由{payer}在存入存管资金时一并存入，于存管资金足额到账时收取",
}
FAILURE_TEXTS = {"refund": "交易未完成的，不收取；已收取的随存管资金原路退回", "keep": "交易未完成的，已收取的不予退还"}
# by workflow id: the party whose money a release pays (a release fee comes out of it) and the party who pays
# into custody (an arrival fee is paid on top of the custody amount); a workflow not named charges no such fee
RECEIVING_PARTY = {
    "resale_escrow": "seller",
    "gov_escrow": "seller",
    "rent_custody": "landlord",
    "provident_fund_rent": "landlord",
}
PAYING_PARTY = {"resale_escrow": "buyer", "gov_escrow": "buyer"}


@dataclass(frozen=True)
class FeeRule:
    name: str
    payer: str
    kind: str  # fixed | rate
    amount_fen: int | None = None
    bps: int | None = None
    min_fen: int | None = None
    max_fen: int | None = None
    charge_on: str = "release"  # release | arrival
    on_failure: str = "refund"  # refund | keep

    def fee_fen(self, base_fen: int) -> int:
        """The fee on `base_fen`: a fixed amount, or a rate rounded half up to the fen and clamped; never more
        than the base."""
        if self.kind == "fixed":
            assert self.amount_fen is not None
            return min(self.amount_fen, base_fen)
        assert self.bps is not None
        fee = (base_fen * self.bps + 5_000) // 10_000
        if self.min_fen is not None:
            fee = max(fee, self.min_fen)
        if self.max_fen is not None:
            fee = min(fee, self.max_fen)
        return min(fee, base_fen)

    def rule_text(self, base_label: str = "存管金额") -> str:
        """The rule in Chinese: 按存管金额的0.30%计收，最低¥500.00，最高¥5,000.00 / 固定收取¥300.00."""
        if self.kind == "fixed":
            assert self.amount_fen is not None
            return f"固定收取{format_yuan(self.amount_fen)}"
        assert self.bps is not None
        text = f"按{base_label}的{self.bps / 100:.2f}%计收"
        if self.min_fen is not None:
            text += f"，最低{format_yuan(self.min_fen)}"
        if self.max_fen is not None:
            text += f"，最高{format_yuan(self.max_fen)}"
        return text


def _due(total_fen: int, base_fen: int, released_fen: int) -> int:
    """The part of `total_fen` due once `released_fen` of `base_fen` is released, rounded half up."""
    released = min(released_fen, base_fen)
    return (2 * total_fen * released + base_fen) // (2 * base_fen)


def release_share(total_fen: int, base_fen: int, before_fen: int, gross_fen: int) -> int:
    """The share of a fee of `total_fen` that a release of `gross_fen` pays when `before_fen` was released before
    it (paid or in flight): cumulative pro rata, so the shares add up to the fee when the releases reach the
    base."""
    if base_fen <= 0:
        return 0
    return _due(total_fen, base_fen, before_fen + gross_fen) - _due(total_fen, base_fen, before_fen)


def release_fees(rules: tuple[FeeRule, ...], base_fen: int, before_fen: int, gross_fen: int) -> dict[int, int]:
    """{index of the rule in the config: fen} a release of `gross_fen` pays (rules charged on release, shares
    above zero)."""
    shares = {
        index: release_share(rule.fee_fen(base_fen), base_fen, before_fen, gross_fen)
        for index, rule in enumerate(rules)
        if rule.charge_on == "release"
    }
    return {index: fen for index, fen in shares.items() if fen > 0}


def arrival_fees(rules: tuple[FeeRule, ...], base_fen: int) -> dict[int, int]:
    """{index of the rule: fen} the paying party pays on top of the custody amount (rules charged on arrival)."""
    fees = {index: rule.fee_fen(base_fen) for index, rule in enumerate(rules) if rule.charge_on == "arrival"}
    return {index: fen for index, fen in fees.items() if fen > 0}


def fee_problem(rule: FeeRule, workflow_id: str) -> tuple[str, str] | None:
    """Why `rule` cannot be charged on a deal of `workflow_id` (Chinese, English), or None."""
    if rule.min_fen is not None and rule.max_fen is not None and rule.min_fen > rule.max_fen:
        return f"费用“{rule.name}”下限高于上限", "fee min_fen above max_fen"
    parties = RECEIVING_PARTY if rule.charge_on == "release" else PAYING_PARTY
    expected = parties.get(workflow_id)
    if rule.payer == expected:
        if rule.charge_on == "release" and rule.on_failure != "refund":
            return (
                f"费用“{rule.name}”在放款时收取，交易未完成时本就不收取：on_failure 只能为 refund",
                "a release fee is never charged on a failed deal: on_failure must be refund",
            )
        return None
    when = CHARGE_ON_LABELS[rule.charge_on]
    if expected is None:
        return (
            f"本业务不支持{when}收取的费用“{rule.name}”",
            f"workflow {workflow_id} charges no fee on {rule.charge_on}",
        )
    return (
        f"{when}收取的费用“{rule.name}”只能由{PAYER_LABELS[expected]}承担（配置为{PAYER_LABELS[rule.payer]}）",
        f"a fee charged on {rule.charge_on} is paid by the {expected}, not the {rule.payer}",
    )


def _amount(amount_fen: int) -> dict[str, str]:
    return {"figure": format_yuan(amount_fen), "upper": to_chinese_upper(amount_fen)}


def agreement_fees(rules: tuple[FeeRule, ...], base_fen: int, base_label: str = "存管金额") -> dict[str, Any]:
    """The agreement's fee section: each fee (name, payer in Chinese, rule, when, on failure, amount on the
    agreement's figures in figures and 大写) and, when the paying party pays fees on arrival, what it pays in all."""
    items = [
        {
            "name": rule.name,
            "payer": PAYER_LABELS[rule.payer],
            "rule": rule.rule_text(base_label),
            "when": WHEN_TEXTS[rule.charge_on].format(payer=PAYER_LABELS[rule.payer]),
            "on_failure": FAILURE_TEXTS[rule.on_failure],
            "amount": _amount(rule.fee_fen(base_fen)),
        }
        for rule in rules
    ]
    on_arrival = sum(arrival_fees(rules, base_fen).values())
    return {"items": items, "pay_in": _amount(base_fen + on_arrival) if on_arrival else None}
