"""Time on screen and in agreements is Asia/Shanghai (storage is UTC): the one zone object everyone uses."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def chinese_day(day: date) -> str:
    """A calendar day as agreements and screens write it: 2026年1月10日."""
    return f"{day.year}年{day.month}月{day.day}日"
