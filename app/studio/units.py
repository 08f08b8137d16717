"""Display units of the studio: yuan ↔ fen, % / ‰ ↔ basis points, durations in days / working days / months.

Parsing is exact (Decimal, never float) and refuses what it cannot read with a Chinese message saying what is
allowed; formatting gives back text that parses to the same stored value."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from app.domain.durations import Duration, WorkingDays, parse_duration
from app.domain.money import MAX_AMOUNT_FEN

RATE_UNITS = {"%": 100, "‰": 10}  # basis points per unit typed
DURATION_UNITS = {
    "days": "天",
    "working_days": "工作日",
    "months": "个月",
    "weeks": "周",
    "hours": "小时",
    "iso": "ISO 8601",
}
_NUMBER = re.compile(r"^\d+(\.\d+)?$")


class UnitError(ValueError):
    """A value typed in display units that cannot be stored; `str(error)` is the Chinese message."""


def _decimal(text: str, what: str, example: str) -> Decimal:
    cleaned = text.strip().replace(",", "").replace("，", "").removeprefix("¥").removeprefix("￥").strip()
    if not _NUMBER.match(cleaned):
        raise UnitError(f"{what}请填写数字，例如 {example}（“{text.strip()}”无法识别）")
    try:
        return Decimal(cleaned)
    except InvalidOperation as error:  # pragma: no cover - the pattern admits only decimals
        raise UnitError(f"{what}请填写数字，例如 {example}") from error


def parse_fen(text: str) -> int:
    """ "1,234.56" (yuan) → 123456 fen; at most two decimals, not negative."""
    value = _decimal(text, "金额", "1234.56") * 100
    if value != value.to_integral_value():
        raise UnitError("金额最多两位小数（精确到分）")
    if value >= MAX_AMOUNT_FEN:
        raise UnitError("金额超出允许范围")
    return int(value)


def format_fen(fen: int) -> str:
    whole, part = divmod(fen, 100)
    return f"{whole}.{part:02d}" if part else str(whole)


def parse_bps(text: str, unit: str) -> int:
    """ "0.3" with unit "%" (or "0.3%", "3‰" typed) → 30 basis points; at most 100%."""
    typed = text.strip()
    for symbol in RATE_UNITS:
        if typed.endswith(symbol):
            typed, unit = typed.removesuffix(symbol).strip(), symbol
    if unit not in RATE_UNITS:
        raise UnitError("请选择单位：% 或 ‰")
    value = _decimal(typed, "比例", "0.3（单位 %）或 3（单位 ‰）") * RATE_UNITS[unit]
    if value != value.to_integral_value():
        smallest = "0.01%" if unit == "%" else "0.1‰"
        raise UnitError(f"比例最多精确到 {smallest}（万分之一）")
    if value > 10000:
        raise UnitError("比例不能超过 100%")
    return int(value)


def format_bps(bps: int) -> tuple[str, str]:
    """(number, unit): shown in % — 30 → ("0.3", "%"), 9000 → ("90", "%")."""
    text = f"{Decimal(bps) / 100:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text), "%"


def parse_int(text: str, what: str) -> int:
    cleaned = text.strip()
    if not cleaned.isdigit() or not cleaned.isascii():
        raise UnitError(f"{what}请填写整数（“{cleaned}”无法识别）")
    return int(cleaned)


def parse_duration_input(number: str, unit: str, cut_off: bool) -> str | dict[str, Any]:
    """A deadline as stored: ISO 8601 (P7D, P1M, P2W, PT48H) or {"working_days": n[, "bank_cut_off": true]}."""
    if unit == "iso":
        text = number.strip().upper()
        parsed = parse_duration(text)
        if parsed is None or not parsed.positive:
            raise UnitError(f"时限格式不正确：{number.strip()}（例如 P7D 表示 7 天，P1M 表示 1 个月）")
        return text
    if unit not in DURATION_UNITS:
        raise UnitError("请选择时限单位：天、工作日、个月、周或小时")
    count = parse_int(number, "时限")
    if count < 1:
        raise UnitError("时限须大于 0")
    if unit == "working_days":
        if count > 250:
            raise UnitError("工作日时限不能超过 250 个工作日")
        return {"working_days": count, "bank_cut_off": True} if cut_off else {"working_days": count}
    letter = {"days": "D", "months": "M", "weeks": "W", "hours": "H"}[unit]
    return f"PT{count}H" if letter == "H" else f"P{count}{letter}"


def format_duration_input(value: Any) -> tuple[str, str, bool]:
    """(number, unit, bank cut-off) of a stored deadline; a combined one (P1M15D) is shown as ISO 8601."""
    parsed = parse_duration(value)
    if isinstance(parsed, WorkingDays):
        return str(parsed.days), "working_days", parsed.bank_cut_off
    if isinstance(parsed, Duration):
        given = {name: getattr(parsed, name) for name in ("months", "weeks", "days", "hours", "minutes")}
        nonzero = [name for name, count in given.items() if count]
        if len(nonzero) == 1 and nonzero[0] != "minutes":
            return str(given[nonzero[0]]), nonzero[0], False
    return str(value), "iso", False
