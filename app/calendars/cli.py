"""flask calendar … : check the calendar files and the alerts they raise."""

from __future__ import annotations

import sys

import click

from app.calendars.alerts import calendar_alerts
from app.calendars.loader import REPOSITORY_FOLDER, CalendarInvalid, load_calendars
from app.platform.cli_base import CliGroup, current_runtime

calendar_cli = CliGroup("calendar", help="工作日历 / business calendars")


@calendar_cli.command("check")
def calendar_check() -> None:
    """检查工作日历文件并列出日历预警；文件无效或有预警时退出码 1。

    Validate calendars/*.json and print the calendar alerts; exit 1 when a file is invalid or an alert is open."""
    try:
        calendars = load_calendars(REPOSITORY_FOLDER)
    except CalendarInvalid as error:
        click.echo(f"✗ {error.message}", err=True)
        for problem in error.problems:
            click.echo(f"  ✗ {problem}", err=True)
        sys.exit(1)
    for year in calendars.years.values():
        state = "完整" if year.complete else "不完整"
        click.echo(f"{year.year} 年 v{year.version}（{state}）sha256 {year.sha256}")
    alerts = calendar_alerts(current_runtime())
    for alert in alerts:
        click.echo(f"  ! {alert.message}", err=True)
    if alerts:
        sys.exit(1)
