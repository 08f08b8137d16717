"""The facts of a deal its agreement states besides the parties, the property and the amounts: the lease (rent
custody, provident-fund rent), the dates of an intent or a freeze, how the price is paid. Pure: from the deal's
case facts (fen, ISO dates) to text ready to print. Every key is always there, "" when the deal has no such
fact, so a template can test it and never prints None."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from app.domain.durations import Duration
from app.domain.money import format_yuan, to_chinese_upper
from app.domain.timezone import chinese_day

DAYS = ("contract_signed_on", "lease_starts_on", "signed_on", "expires_on", "freeze_from")
AMOUNTS = {"monthly_rent": "monthly_rent_fen", "deposit": "deposit_fen", "loan": "loan_amount"}
COUNTS = ("lease_months", "months_per_installment")
TEXTS = ("payment_method",)


def amount(amount_fen: int) -> dict[str, str]:
    """An amount as agreements print it: in figures and in 大写."""
    return {"figure": format_yuan(amount_fen), "upper": to_chinese_upper(amount_fen)}


def _day(value: Any) -> str:
    return chinese_day(date.fromisoformat(value)) if isinstance(value, str) and value else ""


def lease_end(starts_on: date, months: int) -> date:
    """The last day of a lease of `months` calendar months from `starts_on` (2026-01-10, 12 -> 2027-01-09)."""
    start = datetime(starts_on.year, starts_on.month, starts_on.day)
    return (Duration(months=months).after(start) - timedelta(days=1)).date()


def deal_terms(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Dates in Chinese (lease_starts_on, lease_ends_on, signed_on …), amounts as figure and 大写 (monthly_rent,
    deposit, loan: "" when none or zero), counts and texts as text."""
    terms: dict[str, Any] = {name: _day(facts.get(name)) for name in DAYS}
    for name, fact in AMOUNTS.items():
        value = facts.get(fact)
        terms[name] = amount(value) if isinstance(value, int) and value > 0 else ""
    terms |= {name: str(facts[name]) if facts.get(name) else "" for name in (*COUNTS, *TEXTS)}
    starts, months = facts.get("lease_starts_on"), facts.get("lease_months")
    known = isinstance(starts, str) and isinstance(months, int)
    terms["lease_ends_on"] = chinese_day(lease_end(date.fromisoformat(starts), months)) if known else ""
    return terms
