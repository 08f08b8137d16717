"""Working-day deadlines through the services (杭州 government escrow: funding deadline of 3 working days,
counted after the bank's cut-off): the timer fires at the right instant across National Day, the deal page and
the agreement say "3个工作日", and a deadline in a year without a complete calendar raises the calendar alert."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from app.calendars.alerts import DEADLINE_UNCOMPUTABLE, YEAR_MISSING, calendar_alerts
from app.db.models import Deal, DealEvent
from app.deals import service as deals
from app.deals.sample_forms import sample_form
from app.deals.timers import calendar_misses, fire_due_timers
from app.platform.config import BankEndpoint
from app.platform.runtime import Runtime
from app.state_machine.definition import Timer
from tests.factories import INTENT_FORM, actor, load_deal, notification, post_callback

Login = Callable[[str], FlaskClient]
# Wed 30 Sep 2026 17:00 in Shanghai: after 工行's 16:30 cut-off, so received on the next working day, Thu 8 Oct
# (1–7 Oct are National Day); then Fri 9, Sat 10 (调休 working day) and Mon 12: due at the end of Mon 12 Oct
AFTER_CUT_OFF = datetime(2026, 9, 30, 9, 0, tzinfo=UTC)
DUE = datetime(2026, 10, 12, 16, 0, tzinfo=UTC)  # 13 Oct 00:00 Asia/Shanghai


def _funding_deadline_from_creation(rt: Runtime) -> None:
    """Government escrow with the funding-deadline timer on `created` (the shipped workflow starts it when the
    account is opened): the deal's creation instant is then the timer's start, set by the test's clock."""
    key = ("gov_escrow", 1)
    definition = rt.workflows[key]
    created = dataclasses.replace(definition.states["created"], timers=(Timer("funding_deadline", "cancel"),))
    rt.workflows[key] = dataclasses.replace(definition, states={**definition.states, "created": created})


def _create(rt: Runtime) -> int:
    """A 杭州 government-escrow deal at 工行 (the city's first bank; the test app knows only 光大 by default)."""
    rt.banks.setdefault("icbc", BankEndpoint("icbc", "中国工商银行", "http://127.0.0.1:9"))
    form = sample_form(rt.cities.get("330100").product("gov_escrow"), rt.products.get("gov_escrow"))
    form |= {"custody_bank": "icbc"}
    return deals.create_deal(rt, actor(rt, "agent"), "330100", "gov_escrow", form)


def _on_clock(rt: Runtime, start: datetime) -> list[datetime]:
    now = [start]
    rt.clock = lambda: now[0]
    return now


def test_a_three_working_day_deadline_fires_after_the_holiday_at_the_right_instant(
    rt: Runtime, users: dict[str, int]
) -> None:
    _funding_deadline_from_creation(rt)
    now = _on_clock(rt, AFTER_CUT_OFF)
    deal_id = _create(rt)
    view = deals.deal_view(rt, actor(rt, "agent"), deal_id)
    assert [(d.label, d.text, d.due_at) for d in view.deadlines] == [("入金期限", "3个工作日", DUE)]
    now[0] = AFTER_CUT_OFF + timedelta(days=3)  # what P3D would have been: nothing is due yet
    assert fire_due_timers(rt) == 0
    now[0] = DUE - timedelta(seconds=1)
    assert fire_due_timers(rt) == 0
    now[0] = DUE
    assert fire_due_timers(rt) == 1
    assert load_deal(rt, deal_id).state == "cancelled"
    with rt.db.uow() as uow:
        event = uow.session.scalars(select(DealEvent).where(DealEvent.deal_id == deal_id, DealEvent.event == "cancel"))
        detail = event.one().detail
    assert detail["due_at"] == DUE.isoformat()
    assert detail["calendar"] == {"2026": rt.calendars.years[2026].sha256}, "the calendar file the deadline used"


def test_the_deal_page_and_the_agreement_say_three_working_days(
    rt: Runtime, users: dict[str, int], login: Login
) -> None:
    deal_id = _create(rt)
    html = deals.agreement_html(rt, actor(rt, "agent"), deal_id)
    assert "监管账户开立后" in html and ">3个工作日</span>内将交易资金足额存入" in html
    page = login("agent").get(f"/deals/{deal_id}").text
    assert "入金期限" in page and "3个工作日" in page


def _not_fired(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage() == "timer not fired"]


def test_a_deadline_in_a_year_without_a_complete_calendar_raises_the_alert(
    rt: Runtime, users: dict[str, int], login: Login, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    _funding_deadline_from_creation(rt)
    now = _on_clock(rt, datetime(2026, 10, 1, 2, 0, tzinfo=UTC))
    assert calendar_alerts(rt) == [], "more than 60 days before 2027: nothing to say yet"
    now[0] = datetime(2026, 12, 29, 2, 0, tzinfo=UTC)  # Tue 29 Dec: 3 working days reach into 2027
    deal_id = _create(rt)
    deal_no = load_deal(rt, deal_id).deal_no
    alerts = calendar_alerts(rt)
    assert [(a.kind, a.year, a.deal_no) for a in alerts] == [
        (YEAR_MISSING, 2027, None),
        (DEADLINE_UNCOMPUTABLE, 2027, deal_no),
    ]
    assert fire_due_timers(rt) == 0 and not _not_fired(caplog), "not due before 2027: the alert speaks, not the log"
    now[0] = datetime(2027, 1, 10, tzinfo=UTC)
    assert fire_due_timers(rt) == 0 and load_deal(rt, deal_id).state == "created", "never fired on a guess"
    assert [record.code for record in _not_fired(caplog)] == ["CALENDAR_MISSING"]
    assert "缺少 2027 年的完整工作日历" in login("agent").get(f"/deals/{deal_id}").text
    dashboard = login("ops").get("/admin/").text
    assert f"存管单 {deal_no} 的工作日时限落在 2027 年" in dashboard and "calendars/2027.json" in dashboard
    metrics = login("admin").get("/metrics").text
    assert 'cunguan_calendar_alerts{kind="deadline_uncomputable",year="2027"} 1' in metrics
    result = app.test_cli_runner().invoke(args=["calendar", "check"])
    assert result.exit_code == 1 and deal_no in result.output


def test_where_no_config_counts_working_days_the_calendar_check_reads_no_deal(
    rt: Runtime, client: FlaskClient, keys_dir: Path, users: dict[str, int]
) -> None:
    """The console's calendar alerts at scale: which states and configs could count working days is decided from
    the kept deal figures and the configs a deal can pin; where none can, not one deal row is read."""
    rt.banks["pab"] = BankEndpoint("pab", "平安银行", "http://127.0.0.1:9")  # 上海's intent deposits are at PAB
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "310000", "intent_deposit", INTENT_FORM)
    deals.confirm_agreement(rt, actor(rt, "agent"), deal_id)
    account = load_deal(rt, deal_id).virtual_account
    assert account is not None
    opened = notification("account_opened", request_id=account.request_id, account_no="15000000000931")
    assert post_callback(client, keys_dir, {**opened, "account_name": "存管"}, bank="pab")[0] == 200
    deal = load_deal(rt, deal_id)
    assert rt.workflow(deal.workflow_id, deal.workflow_version).states[deal.state].timers, "a deal in a timed state"
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(rt.db.engine, "before_cursor_execute", seen)
    try:
        assert calendar_misses(rt) == []
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", seen)
    assert statements and not [s for s in statements if "FROM deals" in s], statements


def test_a_waiting_deal_is_not_computed_again_before_its_timer_is_due_unless_it_changed(
    rt: Runtime, users: dict[str, int]
) -> None:
    """The worker's rounds (every 2 s) read one row per waiting deal, not its timers, until one may be due."""
    _funding_deadline_from_creation(rt)
    now = _on_clock(rt, AFTER_CUT_OFF)
    deal_id = _create(rt)
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, …)
    event.listen(rt.db.engine, "before_cursor_execute", listen)
    try:
        assert fire_due_timers(rt) == 0
        computed = len(statements)
        statements.clear()
        now[0] = AFTER_CUT_OFF + timedelta(seconds=30)
        assert fire_due_timers(rt) == 0
        assert not any("deal_events" in s for s in statements) and len(statements) < computed, statements
        statements.clear()
        now[0] = AFTER_CUT_OFF + timedelta(seconds=61)  # a calendar may have been published: computed again
        assert fire_due_timers(rt) == 0
        assert any("deal_events" in s for s in statements)
        with rt.db.uow() as uow:  # the deal's row changes (a transition, a freeze): its memo no longer holds
            uow.session.get(Deal, deal_id).updated_at = now[0]  # type: ignore[union-attr]
            uow.commit()
        statements.clear()
        now[0] = AFTER_CUT_OFF + timedelta(seconds=70)
        assert fire_due_timers(rt) == 0
        assert any("deal_events" in s for s in statements), "a changed deal is computed again at once"
    finally:
        event.remove(rt.db.engine, "before_cursor_execute", listen)
    now[0] = DUE
    assert fire_due_timers(rt) == 1 and load_deal(rt, deal_id).state == "cancelled", "due: fired on time"
