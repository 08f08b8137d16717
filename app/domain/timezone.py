"""Time on screen and in agreements is Asia/Shanghai (storage is UTC): the one zone object everyone uses."""

from __future__ import annotations

from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
