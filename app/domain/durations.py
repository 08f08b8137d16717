"""Durations of deadlines and timers: ISO 8601 strings (P7D, PT48H, P1M) or working days in an object
(`{"working_days": 3}`, with `"bank_cut_off": true` when a start after the bank's daily cut-off counts from the
next working day): parse, check, add to an instant, and say in Chinese (10天, 1个月, 3个工作日)."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any

from app.domain.business_calendar import MAX_WORKING_DAYS, BusinessCalendar, CalendarMissing

_PATTERN = re.compile(r"^P(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")
DURATION_REGEX = _PATTERN.pattern


@dataclass(frozen=True)
class Duration:
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0

    @property
    def positive(self) -> bool:
        return any((self.months, self.weeks, self.days, self.hours, self.minutes))

    def after(self, start: datetime) -> datetime:
        """`start` plus this duration; months are calendar months (Jan 31 + P1M = Feb 28/29)."""
        month_index = start.month - 1 + self.months
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        shifted = start.replace(year=year, month=month, day=day)
        return shifted + timedelta(weeks=self.weeks, days=self.days, hours=self.hours, minutes=self.minutes)


@dataclass(frozen=True)
class WorkingDays:
    """`days` working days; `after` needs the business calendar (and the bank's cut-off when
    `bank_cut_off`), bound with `bound`."""

    days: int
    bank_cut_off: bool = False
    calendar: BusinessCalendar | None = field(default=None, compare=False, repr=False)
    cut_off: time | None = field(default=None, compare=False)

    @property
    def positive(self) -> bool:
        return self.days > 0

    def bound(self, calendar: BusinessCalendar, cut_off: time | None) -> WorkingDays:
        return replace(self, calendar=calendar, cut_off=cut_off if self.bank_cut_off else None)

    def after(self, start: datetime) -> datetime:
        if self.calendar is None:
            raise CalendarMissing(start.year)
        return self.calendar.add_working_days(start, self.days, self.cut_off)


WORKING_DAYS_KEYS = frozenset({"working_days", "bank_cut_off"})


def _working_days(value: Mapping[str, Any]) -> WorkingDays | None:
    days, cut_off = value.get("working_days"), value.get("bank_cut_off", False)
    if set(value) - WORKING_DAYS_KEYS or not isinstance(cut_off, bool):
        return None
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_WORKING_DAYS:
        return None
    return WorkingDays(days, cut_off)


def parse_duration(value: object) -> Duration | WorkingDays | None:
    """The duration, or None when `value` is not one (a bare "P" or "PT" is not a duration)."""
    if isinstance(value, Mapping):
        return _working_days(value)
    if not isinstance(value, str):
        return None
    match = _PATTERN.match(value)
    if match is None or value in ("P", "PT") or value.endswith("T"):
        return None
    months, weeks, days, hours, minutes = (int(group) if group else 0 for group in match.groups())
    return Duration(months, weeks, days, hours, minutes)


_UNITS = (("months", "个月"), ("weeks", "周"), ("days", "天"), ("hours", "小时"), ("minutes", "分钟"))


def format_duration(value: Duration | WorkingDays) -> str:
    """The duration as people read it: 3个工作日, 10天, 1个月, 48小时, 1个月15天."""
    if isinstance(value, WorkingDays):
        return f"{value.days}个工作日"
    return "".join(f"{getattr(value, name)}{unit}" for name, unit in _UNITS if getattr(value, name))
