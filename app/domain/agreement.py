"""The data an escrow agreement is made of, and the ready-to-print context its template is rendered with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.domain.agreement_terms import amount, deal_terms
from app.domain.cities import FormSpec
from app.domain.extra_fields import extra_items
from app.domain.pii_mask import PiiKind
from app.domain.release_plan import PlannedTranche
from app.domain.timezone import chinese_day

PLATFORM_NAME = "存管平台"
ACCOUNT_PENDING = "待银行开立"
AGREEMENT_TIMEZONE = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Party:
    name: str | None
    id_number: str | None
    bank_name: str | None
    bank_account: str | None


@dataclass(frozen=True)
class AgreementData:
    agreement_no: str
    city_name: str
    product_name: str
    bank_name: str
    buyer: Party
    seller: Party
    property_address: str | None
    certificate_no: str | None
    price_fen: int
    custody_amount_fen: int
    created_at: datetime
    account_no: str | None
    # from the deal's pinned city config (product section): clauses the city adds, the supervising authority
    clauses: tuple[str, ...] = ()
    authority: str | None = None
    stages: tuple[str, ...] = ()  # the release rule's tranches (renovation escrow pays by stage)
    deadlines: Mapping[str, str] = field(default_factory=dict)  # workflow duration parameter -> "3个工作日"
    fees: Mapping[str, Any] = field(default_factory=dict)  # app.domain.fees.agreement_fees: items, pay_in
    release_plan: tuple[PlannedTranche, ...] = ()  # the deal's release plan with its amounts (放款计划)
    # the deal's facts ready to print (`app.domain.agreement_terms.deal_terms`): lease, dates, payment method
    terms: Mapping[str, Any] = field(default_factory=lambda: deal_terms({}))
    # the city's extra form fields (pinned config) and the deal's values of them, printed under 附加信息
    extra_form: FormSpec | None = None
    extra_values: Mapping[str, Any] = field(default_factory=dict)


def _mask(value: str, keep_start: int, keep_end: int) -> str:
    """Replace the middle of `value` with '*'; everything is hidden when too short to keep both ends safely."""
    compact = "".join(value.split())
    if len(compact) <= keep_start + keep_end:
        return "*" * len(compact)
    hidden = len(compact) - keep_start - keep_end
    return compact[:keep_start] + "*" * hidden + compact[len(compact) - keep_end :]


def mask_id_number(value: str) -> str:
    """110101199003071234 -> 110***********1234."""
    return _mask(value, 3, 4)


def mask_bank_account(value: str) -> str:
    """6222 0212 3456 7890 -> ************7890 (only the last four digits shown)."""
    return _mask(value, 0, 4)


def mask_phone(value: str) -> str:
    """13812345678 -> 138****5678."""
    return _mask(value, 3, 4)


def format_chinese_date(moment: datetime) -> str:
    """An aware datetime as the calendar date in Asia/Shanghai: 2026年11月24日."""
    if moment.tzinfo is None:
        raise ValueError("agreement dates must be timezone-aware")
    return chinese_day(moment.astimezone(AGREEMENT_TIMEZONE).date())


def _share(bps: int) -> str:
    """9000 -> "90%", 3333 -> "33.33%", 1250 -> "12.5%"."""
    whole, hundredths = divmod(bps, 100)
    return f"{whole}%" if not hundredths else f"{whole}.{hundredths:02d}".rstrip("0") + "%"


def _tranche(tranche: PlannedTranche) -> dict[str, str]:
    """One line of the 放款计划: its name, the event in Chinese, the amount in figures and 大写, the share."""
    share = "余款" if tranche.remainder else ("" if tranche.share_bps is None else _share(tranche.share_bps))
    return {"label": tranche.label, "event": tranche.event_label, "share": share, **amount(tranche.amount_fen)}


MASKABLE = frozenset({"id_number", "bank_account"})


def _party(party: Party, masked: frozenset[str]) -> dict[str, str]:
    """The party as the template shows it; a field the product does not have is an empty string."""

    def shown(field: str, value: str | None, mask: Callable[[str], str]) -> str:
        if not value:
            return ""
        return mask(value) if field in masked else value

    return {
        "name": party.name or "",
        "id_number": shown("id_number", party.id_number, mask_id_number),
        "bank_name": party.bank_name or "",
        "bank_account": shown("bank_account", party.bank_account, mask_bank_account),
    }


def _masked_kinds(masked: frozenset[str]) -> frozenset[PiiKind]:
    """The kinds of personal data an extra field is masked as: what the manifest masks of the parties, and
    phones always (the parties' phones are never printed)."""
    kinds: set[PiiKind] = {"phone"}
    if "id_number" in masked:
        kinds.add("id")
    if "bank_account" in masked:
        kinds.add("card")
    return frozenset(kinds)


def agreement_context(data: AgreementData, masked: frozenset[str] = MASKABLE) -> dict[str, Any]:
    """Everything the agreement template shows, already formatted; the parties' fields named in `masked`
    (the template version's manifest says which, by default all of them) are masked, and so are the extra
    fields of those kinds. `extras` lists every extra field (label, text) for the 附加信息 section; `extra` gives
    each by name for clauses (`{{ extra.house_area }}`), "" when it was left empty."""
    buyer, seller = _party(data.buyer, masked), _party(data.seller, masked)
    extras = extra_items(data.extra_form, data.extra_values, _masked_kinds(masked))
    return {
        "agreement_no": data.agreement_no,
        "city_name": data.city_name,
        "product_name": data.product_name,
        "platform_name": PLATFORM_NAME,
        "bank_name": data.bank_name,
        "buyer": buyer,
        "seller": seller,
        "first_party": buyer,
        "second_party": seller,
        "property": {"address": data.property_address or "", "certificate_no": data.certificate_no or ""},
        "price": amount(data.price_fen),
        "custody": amount(data.custody_amount_fen),
        "account_no": data.account_no or ACCOUNT_PENDING,
        "created_date": format_chinese_date(data.created_at),
        "clauses": list(data.clauses),
        "stages": [{"label": label} for label in data.stages],
        "deadlines": dict(data.deadlines),
        "release_plan": [_tranche(tranche) for tranche in data.release_plan],
        "authority": data.authority or f"{data.city_name}住房和城乡建设主管部门",
        "fees": {"items": [], "pay_in": None, **data.fees},
        "terms": dict(data.terms),
        "extras": [{"label": item.label, "text": item.text} for item in extras],
        "extra": {item.name: item.text for item in extras},
    }
