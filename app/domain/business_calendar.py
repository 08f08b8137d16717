"""Working days in mainland China: weekends and public holidays are off, 调休 make-up days are on.

One `CalendarYear` per year, from the State Council's published schedule (`calendars/<year>.json`, loaded
by `app.calendars.loader`). A computation that needs a year without a complete calendar raises
`CalendarMissing` (CALENDAR_MISSING) rather than guess. Days are Asia/Shanghai days; instants are aware
datetimes (UTC in, UTC out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from app.domain.timezone import SHANGHAI
from app.platform.errors import ConfigError

MAX_WORKING_DAYS = 250  # a year's worth: larger spans are not deadlines


class CalendarMissing(ConfigError):
    """A computation needs a year the platform has no complete business calendar for."""

    code = "CALENDAR_MISSING"

    def __init__(self, year: int) -> None:
        super().__init__(
            f"缺少 {year} 年的完整工作日历（节假日与调休安排），无法按工作日计算时限", details={"year": year}
        )
        self.year = year

    @property
    def year_starts_at(self) -> datetime:
        """A deadline that needs the missing year ends after this instant (1 January, 00:00 Asia/Shanghai)."""
        return datetime(self.year, 1, 1, tzinfo=SHANGHAI)


@dataclass(frozen=True)
class CalendarYear:
    year: int
    version: int
    complete: bool
    holidays: Mapping[date, str]
    workdays: Mapping[date, str]
    sha256: str  # of the file's bytes: what a deal records as the calendar it used


@dataclass(frozen=True)
class BusinessCalendar:
    years: Mapping[int, CalendarYear] = field(default_factory=dict)

    def _year(self, day: date) -> CalendarYear:
        year = self.years.get(day.year)
        if year is None or not year.complete:
            raise CalendarMissing(day.year)
        return year

    def is_working_day(self, day: date) -> bool:
        year = self._year(day)
        if day in year.workdays:
            return True
        return day.weekday() < 5 and day not in year.holidays

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, start: datetime, days: int, cut_off: time | None = None) -> datetime:
        """The end (midnight, Asia/Shanghai, returned in UTC) of the `days`-th working day after `start`'s day:
        the starting day is not counted (民法典第二百零一条). With a `cut_off` (local time of day) the start
        counts as received on its own day only when that day is a working day and it is before the cut-off,
        otherwise on the next working day."""
        if start.tzinfo is None:
            raise ValueError("working days are counted from an aware instant")
        if not 0 < days <= MAX_WORKING_DAYS:
            raise ValueError(f"working days must be within 1..{MAX_WORKING_DAYS}: {days}")
        local = start.astimezone(SHANGHAI)
        day = local.date()
        if cut_off is not None and not (self.is_working_day(day) and local.time() < cut_off):
            day = self.next_working_day(day)
        for _ in range(days):
            day = self.next_working_day(day)
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=SHANGHAI).astimezone(UTC)

    def last_complete_year(self, today: date) -> int | None:
        """The last year of the unbroken run of complete years that starts with `today`'s; None when
        `today`'s own year has no complete calendar."""
        year = today.year
        if year not in self.years or not self.years[year].complete:
            return None
        while year + 1 in self.years and self.years[year + 1].complete:
            year += 1
        return year

    def hashes(self, first: int, last: int) -> dict[str, str]:
        """Year -> sha256 of the calendars of the years `first..last` this calendar has."""
        return {str(y): self.years[y].sha256 for y in range(first, last + 1) if y in self.years}

    def uncovered_year(self, today: date, warn_days: int) -> int | None:
        """The first year without a complete calendar when it starts within `warn_days` of `today` (or has
        started already): the year a deadline could soon fall in and not be computed. None when covered."""
        last = self.last_complete_year(today)
        if last is None:
            return today.year
        return last + 1 if (date(last + 1, 1, 1) - today).days <= warn_days else None
