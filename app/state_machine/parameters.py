"""Workflow parameter types: which JSON values each accepts, and a city's values resolved over the defaults."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any

from app.domain.business_calendar import BusinessCalendar
from app.domain.durations import Duration, WorkingDays, format_duration, parse_duration
from app.state_machine.definition import Parameter

TYPE_LABELS = {
    "integer": "整数",
    "fen": "金额（分，整数）",
    "bps": "基点（0–10000 的整数）",
    "boolean": "是/否",
    "string": "文本",
    "duration": '时长（ISO 8601，例如 P7D；或工作日，例如 {"working_days": 3}）',
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def type_problem(type_name: str, value: Any) -> str | None:
    """Why `value` is not a `type_name` (English), or None when it is one."""
    if type_name in ("integer", "fen", "bps") and not _is_int(value):
        return f"expected an integer ({type_name}), got {value!r}"
    if type_name == "fen" and value < 0:
        return f"an amount in fen cannot be negative: {value}"
    if type_name == "bps" and not 0 <= value <= 10_000:
        return f"basis points must be within 0..10000: {value}"
    if type_name == "boolean" and not isinstance(value, bool):
        return f"expected true or false, got {value!r}"
    if type_name == "string" and not isinstance(value, str):
        return f"expected a string, got {value!r}"
    if type_name == "duration":
        parsed = parse_duration(value)
        if parsed is None:
            return f"expected an ISO 8601 duration such as P7D or PT48H, or {{'working_days': 3}}, got {value!r}"
        if not parsed.positive:
            return f"a duration must be positive: {value!r}"
    return None


def bound_problem(low: int | None, high: int | None, value: Any) -> str | None:
    """Why the integer `value` is outside a parameter's declared bounds (inclusive; None: unbounded), or None."""
    if not _is_int(value):
        return None
    if low is not None and value < low:
        return f"below the minimum {low}: {value}"
    if high is not None and value > high:
        return f"above the maximum {high}: {value}"
    return None


def resolve(parameters: Mapping[str, Parameter], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults with the overrides on top; durations become Duration objects. Inputs must be checked already."""
    values = {name: overrides.get(name, parameter.default) for name, parameter in parameters.items()}
    return {
        name: parse_duration(value) if parameters[name].type == "duration" else value for name, value in values.items()
    }


def with_calendar(values: Mapping[str, Any], calendar: BusinessCalendar, cut_off: time | None) -> dict[str, Any]:
    """Resolved `values` whose working-day durations count on `calendar` (and the bank's `cut_off` where the
    config asks for it)."""
    return {
        name: value.bound(calendar, cut_off) if isinstance(value, WorkingDays) else value
        for name, value in values.items()
    }


def duration(values: Mapping[str, Any], name: str) -> Duration | WorkingDays:
    value = values[name]
    assert isinstance(value, Duration | WorkingDays), f"parameter {name!r} is not a duration"
    return value


def deadline_texts(parameters: Mapping[str, Parameter], overrides: Mapping[str, Any]) -> dict[str, str]:
    """Each duration parameter as people read it (3个工作日, 10天, 1个月): what screens and agreements print."""
    values = resolve(parameters, overrides)
    return {
        name: format_duration(values[name]) for name, parameter in parameters.items() if parameter.type == "duration"
    }
