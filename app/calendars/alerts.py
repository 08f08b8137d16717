"""Calendar alerts: a year without a complete business calendar is near (CUNGUAN_CALENDAR_WARN_DAYS, 60 by
default, before it starts), or a running deal's working-day deadline already falls in one. Computed on each
look (dashboard, metrics, `flask calendar check`), so every process shows the same and nothing is left to
clear once the year's calendar file is published."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.deals.timers import calendar_misses
from app.domain.timezone import SHANGHAI
from app.platform.runtime import Runtime

YEAR_MISSING, DEADLINE_UNCOMPUTABLE = "year_missing", "deadline_uncomputable"


@dataclass(frozen=True)
class CalendarAlert:
    kind: str  # YEAR_MISSING | DEADLINE_UNCOMPUTABLE
    year: int
    message: str  # zh-CN
    deal_no: str | None = None


def calendar_alerts(rt: Runtime, now: datetime | None = None) -> list[CalendarAlert]:
    today = (now or rt.clock()).astimezone(SHANGHAI).date()
    alerts = []
    year = rt.calendars.uncovered_year(today, rt.calendar_warn_days)
    if year is not None:
        alerts.append(
            CalendarAlert(
                YEAR_MISSING,
                year,
                f"{year} 年的工作日历不完整（缺国务院办公厅节假日安排）：请补全 calendars/{year}.json，"
                f"否则落在 {year} 年的工作日时限无法计算",
            )
        )
    alerts += [
        CalendarAlert(
            DEADLINE_UNCOMPUTABLE,
            year,
            f"存管单 {deal_no} 的工作日时限落在 {year} 年，该年工作日历不完整，定时器无法执行",
            deal_no,
        )
        for deal_no, year in calendar_misses(rt)
    ]
    return alerts
