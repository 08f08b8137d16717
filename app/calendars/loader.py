"""Read the business calendars (`calendars/<year>.json`): JSON Schema, then sanity (dates inside the year, no
day both a holiday and a make-up working day, make-up days on weekends); each year keeps its file's sha256 and
version so that it can be pinned and, later, published like a city config."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators

from app.domain.business_calendar import BusinessCalendar, CalendarYear
from app.domain.problems import Problem, pointer
from app.platform.config import ROOT
from app.platform.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "calendar.schema.json"
REPOSITORY_FOLDER = ROOT / "calendars"


class CalendarInvalid(ConfigError):
    """A calendar file that must not be used; `problems` lists every problem found."""

    code = "CALENDAR_INVALID"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"工作日历有 {len(problems)} 处错误", details=[problem.to_dict() for problem in problems])
        self.problems = problems


@cache
def _validator() -> Draft202012Validator:
    strict_types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = validators.extend(Draft202012Validator, type_checker=strict_types)
    return strict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _days(data: dict[str, Any], group: str, source: str, problems: list[Problem]) -> dict[date, str]:
    days: dict[date, str] = {}
    for index, item in enumerate(data[group]):
        at = pointer(group, index, "date")
        try:
            day = date.fromisoformat(item["date"])
        except ValueError:
            problems.append(Problem(source, at, f"日期 {item['date']} 无效", f"invalid date {item['date']!r}"))
            continue
        if day.year != data["year"]:
            problems.append(Problem(source, at, f"{day} 不在 {data['year']} 年内", f"{day} is outside the year"))
        elif day in days:
            problems.append(Problem(source, at, f"{day} 重复", f"{day} is listed twice"))
        elif group == "workdays" and day.weekday() < 5:
            problems.append(
                Problem(source, at, f"调休上班日 {day} 不是周末", f"make-up working day {day} is a weekday")
            )
        days[day] = item["name"]
    return days


def parse_year(content: bytes, source: str) -> CalendarYear:
    """One year's calendar from its file's bytes; CalendarInvalid names every problem."""
    try:
        data = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CalendarInvalid([Problem(source, "/", "不是有效的 JSON", str(error))]) from None
    problems = [
        Problem(source, pointer(*error.absolute_path), "不符合工作日历结构定义", error.message)
        for error in _validator().iter_errors(data)
    ]
    if problems:
        raise CalendarInvalid(problems)
    if source.endswith(".json") and Path(source).stem != str(data["year"]):
        problems.append(Problem(source, "/year", "年份与文件名不一致", f"year {data['year']} in file {source}"))
    holidays = _days(data, "holidays", source, problems)
    workdays = _days(data, "workdays", source, problems)
    problems += [
        Problem(source, "/workdays", f"{day} 既是放假日又是上班日", f"{day} is both a holiday and a working day")
        for day in sorted(holidays.keys() & workdays.keys())
    ]
    if problems:
        raise CalendarInvalid(problems)
    sha256 = hashlib.sha256(content).hexdigest()
    return CalendarYear(data["year"], data["version"], data["complete"], holidays, workdays, sha256)


def load_calendars(folder: Path) -> BusinessCalendar:
    years = [parse_year(path.read_bytes(), path.name) for path in sorted(folder.glob("*.json"))]
    return BusinessCalendar({year.year: year for year in years})


@cache
def repository_calendars() -> BusinessCalendar:
    """The calendars shipped in the repository (the seed of published versions)."""
    return load_calendars(REPOSITORY_FOLDER)
