"""ISO 8601 durations for deadlines and timers (P7D, PT48H, P1M): parse, check, add to an instant."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

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


def parse_duration(text: str) -> Duration | None:
    """The duration, or None when `text` is not one (a bare "P" or "PT" is not a duration)."""
    match = _PATTERN.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        return None
    months, weeks, days, hours, minutes = (int(group) if group else 0 for group in match.groups())
    return Duration(months, weeks, days, hours, minutes)
