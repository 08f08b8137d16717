"""The business calendar: 2026 holidays and 调休 make-up days, working-day deadlines with a bank's cut-off, the
refusal of a bad calendar file or working-day duration, and years without a complete calendar."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from app.banks.registry import configured_banks
from app.calendars.loader import CalendarInvalid, load_calendars, parse_year, repository_calendars
from app.domain.business_calendar import BusinessCalendar, CalendarMissing
from app.domain.city_checks import validate_file
from app.domain.durations import Duration, WorkingDays, format_duration, parse_duration
from app.domain.timezone import SHANGHAI
from app.platform.bootstrap import TEMPLATES_DIR
from app.products.loader import repository_products
from tests.unit.test_city_checks import VIRTUAL, WORKFLOWS, _mutated, _problems, _write

CALENDAR = repository_calendars()
CUT_OFF = time(16, 30)

PRODUCTS = repository_products()


def _local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc] - year, month, day, hour, minute


def _due(start: datetime, days: int, cut_off: time | None = None) -> datetime:
    return CALENDAR.add_working_days(start, days, cut_off).astimezone(SHANGHAI)


def test_the_shipped_2026_calendar_follows_the_state_council_schedule() -> None:
    assert CALENDAR.years[2026].complete and not CALENDAR.years[2027].complete
    assert CALENDAR.is_working_day(date(2026, 2, 14)), "Saturday 14 Feb is a 调休 working day"
    assert CALENDAR.is_working_day(date(2026, 1, 4)) and CALENDAR.is_working_day(date(2026, 10, 10))
    assert not any(CALENDAR.is_working_day(date(2026, 2, day)) for day in range(15, 24)), "春节 15–23 Feb"
    assert not CALENDAR.is_working_day(date(2026, 10, 1)) and not CALENDAR.is_working_day(date(2026, 11, 7))
    assert CALENDAR.is_working_day(date(2026, 11, 6))


def test_three_working_days_cross_the_spring_festival() -> None:
    # Thu 12 Feb: Fri 13, Sat 14 (调休), then the holiday until Mon 23: the third working day is Tue 24
    assert _due(_local(2026, 2, 12, 10, 0), 3) == _local(2026, 2, 25, 0, 0)
    # the instant is UTC: 25 Feb 00:00 in Shanghai is 24 Feb 16:00 UTC
    assert CALENDAR.add_working_days(_local(2026, 2, 12, 10, 0), 3) == datetime(2026, 2, 24, 16, 0, tzinfo=UTC)


def test_three_working_days_cross_national_day_and_count_its_make_up_saturday() -> None:
    # Wed 30 Sep: 1–7 Oct off, then Thu 8, Fri 9 and Sat 10 (调休) -> ends with 10 Oct
    assert _due(_local(2026, 9, 30, 10, 0), 3) == _local(2026, 10, 11, 0, 0)


def test_after_the_cut_off_or_on_a_day_off_the_count_starts_from_the_next_working_day() -> None:
    before, after = _local(2026, 11, 20, 16, 29), _local(2026, 11, 20, 16, 31)  # a Friday
    assert _due(before, 3, CUT_OFF) == _local(2026, 11, 26, 0, 0), "counted from Fri: Mon, Tue, Wed"
    assert _due(after, 3, CUT_OFF) == _local(2026, 11, 27, 0, 0), "received Mon: Tue, Wed, Thu"
    assert _due(after, 3) == _local(2026, 11, 26, 0, 0), "no cut-off configured: the time of day does not matter"
    assert _due(_local(2026, 11, 21, 9, 0), 3, CUT_OFF) == _local(2026, 11, 27, 0, 0), "Saturday: received Mon"


def test_a_computation_needing_a_year_without_a_complete_calendar_raises_calendar_missing() -> None:
    with pytest.raises(CalendarMissing) as missing:
        CALENDAR.add_working_days(_local(2026, 12, 29, 10, 0), 3)
    assert (missing.value.code, missing.value.year) == ("CALENDAR_MISSING", 2027)
    assert "2027" in missing.value.message and "工作日历" in missing.value.message
    assert _due(_local(2026, 12, 24, 10, 0), 3) == _local(2026, 12, 30, 0, 0), "a deadline inside 2026 is fine"
    with pytest.raises(CalendarMissing):  # a working-day duration not bound to a calendar never guesses
        WorkingDays(3).after(_local(2026, 3, 2, 10, 0))


def test_the_year_to_warn_about() -> None:
    assert CALENDAR.uncovered_year(date(2026, 11, 2), 60) == 2027, "60 days before 1 Jan 2027"
    assert CALENDAR.uncovered_year(date(2026, 10, 1), 60) is None
    assert CALENDAR.uncovered_year(date(2027, 3, 1), 60) == 2027, "a year already begun without a calendar"
    both = BusinessCalendar({2026: CALENDAR.years[2026], 2027: replace(CALENDAR.years[2027], complete=True)})
    assert both.uncovered_year(date(2026, 12, 20), 60) is None and both.uncovered_year(date(2027, 11, 2), 60) == 2028


def _calendar_file(**changes: object) -> dict:
    data = json.loads((Path(__file__).parents[2] / "calendars" / "2026.json").read_text(encoding="utf-8"))
    return {**data, **changes}


@pytest.mark.parametrize(
    ("changes", "pointer", "zh"),
    [
        ({"workdays": [{"date": "2026-10-03", "name": "错"}]}, "/workdays", "既是放假日又是上班日"),
        ({"holidays": [{"date": "2025-12-31", "name": "错"}]}, "/holidays/0/date", "不在 2026 年内"),
        ({"workdays": [{"date": "2026-03-04", "name": "错"}]}, "/workdays/0/date", "不是周末"),
        ({"holidays": [{"date": "2026-02-30", "name": "错"}]}, "/holidays/0/date", "无效"),
        ({"source": ""}, "/source", "结构"),
        ({"complete": "yes"}, "/complete", "结构"),
    ],
)
def test_a_bad_calendar_file_is_refused(tmp_path: Path, changes: dict, pointer: str, zh: str) -> None:
    (tmp_path / "2026.json").write_text(json.dumps(_calendar_file(**changes), ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CalendarInvalid) as invalid:
        load_calendars(tmp_path)
    assert invalid.value.code == "CALENDAR_INVALID"
    assert any(p.pointer == pointer and zh in p.message for p in invalid.value.problems), invalid.value.problems


def test_a_calendar_file_must_be_named_after_its_year() -> None:
    content = json.dumps(_calendar_file(), ensure_ascii=False).encode()
    with pytest.raises(CalendarInvalid, match="1 处"):
        parse_year(content, "2027.json")
    assert parse_year(content, "2026.json").sha256 != CALENDAR.years[2026].sha256, "the hash is the file's bytes"


def test_durations_parse_and_read_in_chinese() -> None:
    assert parse_duration({"working_days": 3}) == WorkingDays(3)
    assert parse_duration({"working_days": 3, "bank_cut_off": True}) == WorkingDays(3, bank_cut_off=True)
    for wrong in ({"working_days": "3"}, {"days": 3}, {"working_days": 3, "bank_cut_off": "yes"}, 3):
        assert parse_duration(wrong) is None, wrong
    assert parse_duration("P10D") == Duration(days=10), "ISO 8601 keeps working"
    assert [format_duration(parse_duration(v)) for v in ({"working_days": 3}, "P10D", "P1M", "PT48H", "P1M15D")] == [
        "3个工作日",
        "10天",
        "1个月",
        "48小时",
        "1个月15天",
    ]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    _write(tmp_path, "_virtual", VIRTUAL)
    return tmp_path


def _with_payment_grace(deadline: object) -> dict:
    return _mutated(lambda products: products["rent_custody"].update(deadlines={"payment_grace": deadline}))


@pytest.mark.parametrize(
    ("deadline", "zh"),
    [({"working_days": 0}, "结构"), ({"working_days": 3, "bank_cut_off": "yes"}, "结构"), ({"days": 3}, "结构")],
)
def test_a_city_config_with_a_bad_working_day_duration_is_refused(folder: Path, deadline: dict, zh: str) -> None:
    _write(folder, "999901", _with_payment_grace(deadline))
    problems = _problems(folder, "999901")
    assert any(p.pointer.startswith("/products/rent_custody/deadlines/payment_grace") for p in problems), problems
    assert any(zh in p.message for p in problems)


def test_a_city_config_may_give_a_deadline_in_working_days(folder: Path) -> None:
    deadline = {"working_days": 2, "bank_cut_off": True}
    _write(folder, "999901", _with_payment_grace(deadline))
    city = validate_file(folder / "999901.json", WORKFLOWS, TEMPLATES_DIR, configured_banks(), PRODUCTS)
    assert city.product("rent_custody").deadlines["payment_grace"] == deadline
