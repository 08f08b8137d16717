"""Field formats with real checks, shared by the JSON Schema format checker and the error messages.

Each format normalises what people type (spaces, lower-case x, +86 …) before it is checked, so the
value that is validated is the value that is stored."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from jsonschema import FormatChecker

from app.domain.identity import (
    is_cn_mobile,
    is_plausible_bank_account,
    is_valid_bank_card,
    is_valid_resident_id,
    is_valid_uscc,
)

_DATE_PATTERN = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def _compact(value: str) -> str:
    return re.sub(r"[\s-]+", "", value)


def _mobile(value: str) -> str:
    compact = _compact(value)
    return compact.removeprefix("+86") if compact.startswith("+86") else compact


def normalize_date(value: str) -> str:
    """ "2026/1/5", "2026.01.05", "2026年1月5日" -> "2026-01-05"; anything else is returned as typed."""
    match = _DATE_PATTERN.match(value.strip())
    if match is None:
        return value.strip()
    year, month, day = match.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"


def parse_date(value: str) -> date | None:
    """A real calendar date between 1900 and 2099 written YYYY-MM-DD, else None."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return None
    return parsed if 1900 <= parsed.year <= 2099 else None


@dataclass(frozen=True)
class Format:
    name: str
    normalize: Callable[[str], str]
    check: Callable[[str], bool]
    message: str  # "{label}" is replaced by the field's label
    widget: str  # the widget a field of this format gets unless its schema names one


FORMATS: dict[str, Format] = {
    item.name: item
    for item in (
        Format(
            "cn-resident-id",
            lambda v: _compact(v).upper(),
            is_valid_resident_id,
            "{label}无效（请检查位数、出生日期和校验位）",
            "id_number",
        ),
        Format(
            "cn-uscc",
            lambda v: _compact(v).upper(),
            is_valid_uscc,
            "{label}无效（应为 18 位，请检查各位字符和校验码）",
            "uscc",
        ),
        Format("cn-mobile", _mobile, is_cn_mobile, "{label}应为 11 位手机号码，以 13–19 开头", "phone"),
        Format(
            "bank-card", _compact, is_valid_bank_card, "{label}无效（应为 16 到 19 位数字，请检查卡号）", "bank_card"
        ),
        Format("bank-account", _compact, is_plausible_bank_account, "{label}应为 12 到 30 位数字", "bank_account"),
        Format(
            "date",
            normalize_date,
            lambda v: parse_date(v) is not None,
            "{label}应为有效日期，例如 2026-11-23",
            "date",
        ),
    )
}

# A city's extra field may name only a widget; these widgets imply the format that checks them.
WIDGET_FORMATS = {
    "id_number": "cn-resident-id",
    "phone": "cn-mobile",
    "bank_card": "bank-card",
    "bank_account": "bank-account",
    "date": "date",
}


def format_checker() -> FormatChecker:
    """A jsonschema FormatChecker that knows only our formats (strings only; other types pass)."""
    checker = FormatChecker(formats=())
    for item in FORMATS.values():
        checker.checks(item.name)(lambda value, check=item.check: not isinstance(value, str) or check(value))
    return checker
