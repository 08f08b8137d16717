"""A deal's fees as people see them: the agreement's fee section, and on the deal page each fee with its payer,
rule, amount and where it stands (已收取 / 待收取 / 已退还 …), read from the ledger's fee transfers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.db.ledger_models import LedgerTransfer
from app.db.models import Deal
from app.deals.pinning import pinned_city
from app.domain import fees as rules
from app.domain.cities import CityConfig
from app.domain.products import ProductRegistry
from app.payouts.agreed import agreed_release_fen
from app.platform.runtime import Runtime


def _base(deal: Deal, products: ProductRegistry) -> tuple[int, str]:
    """What the deal's fees are computed on, and its name in the agreement."""
    base = agreed_release_fen(deal, products)
    return base, "存管金额" if base == deal.custody_amount_fen else "租赁合同总额"


def agreement_terms(rt: Runtime, session: Session, deal: Deal) -> dict[str, Any]:
    """The agreement's `fees`: each fee in figures and 大写, and what the payer pays in when it pays fees on
    arrival (`app.domain.fees.agreement_fees`)."""
    return fee_terms(rt, pinned_city(rt, session, deal), deal)


def fee_terms(rt: Runtime, city: CityConfig, deal: Deal) -> dict[str, Any]:
    """The agreement's `fees` of `deal` under `city` (the config it pinned, or a draft's for its preview)."""
    return rules.agreement_fees(city.product(deal.product).fees, *_base(deal, rt.products))


@dataclass(frozen=True)
class FeeLine:
    name: str
    payer: str  # in Chinese
    rule: str
    when: str
    amount_fen: int  # on the deal's agreed amount
    charged_fen: int  # moved to fee income (less what went back)
    status: str  # 已收取 | 部分收取 | 待收取 | 已退还 | 未收取
    on_arrival: bool  # paid into custody on top of the custody amount


def _status(amount_fen: int, charged_fen: int, returned: bool, ended: bool) -> str:
    if returned:
        return "已退还"
    if charged_fen >= amount_fen:
        return "已收取"
    if charged_fen > 0:
        return "部分收取"
    return "未收取" if ended else "待收取"


def deal_fees(rt: Runtime, session: Session, deal: Deal, transfers: Iterable[LedgerTransfer]) -> list[FeeLine]:
    """Each configured fee of the deal and where it stands, from the deal's ledger transfers: a release's
    `fee:<payout>:<rule>`, an arrival's `fee:<deal>:arrival:<rule>` and its return `…:refund`."""
    configured = pinned_city(rt, session, deal).product(deal.product).fees
    if not configured:
        return []
    charged: dict[int, int] = {}
    returned: set[int] = set()
    for transfer in transfers:
        parts = transfer.id.split(":")
        if transfer.code == "fee" and parts[0] == "fee":
            charged[int(parts[-1])] = charged.get(int(parts[-1]), 0) + transfer.amount_fen
        elif transfer.code == "reversal" and parts[0] == "fee" and parts[-1] == "refund":
            index = int(parts[-2])
            charged[index] = charged.get(index, 0) - transfer.amount_fen
            returned.add(index)
    base, label = _base(deal, rt.products)
    ended = rt.workflow(deal.workflow_id, deal.workflow_version).states[deal.state].final
    return [
        FeeLine(
            rule.name,
            rules.PAYER_LABELS[rule.payer],
            rule.rule_text(label),
            rules.CHARGE_ON_LABELS[rule.charge_on],
            rule.fee_fen(base),
            charged.get(index, 0),
            _status(rule.fee_fen(base), charged.get(index, 0), index in returned, ended),
            rule.charge_on == "arrival",
        )
        for index, rule in enumerate(configured)
    ]
