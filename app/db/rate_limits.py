"""A bank's account-opening window in the database, atomically across processes (its row is locked)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import BankRateLimit
from app.db.upsert import insert_if_absent
from app.domain.rate_limit import (
    Limits,
    Send,
    WindowState,
    achievable_per_second,
    answered,
    opened_today,
    refused,
    take,
)
from app.domain.timezone import SHANGHAI


def window_state(row: BankRateLimit | None) -> WindowState:
    """The window a row stores (an empty one for a bank never paced)."""
    if row is None:
        return WindowState()
    sends = [Send(*send) for send in json.loads(row.sends)]
    return WindowState(sends, row.day, row.day_count, row.offset_ms, row.offset_at_ms)


def opening_state(session: Session, bank_code: str, limits: Limits, now: datetime) -> tuple[int, float]:
    """(openings counted today on the bank's day, the pace the window achieves under `limits`): what estimates,
    schedules and progress start from."""
    state = window_state(session.get(BankRateLimit, bank_code))
    return opened_today(state, now), achievable_per_second(state, limits, now)


def _locked(session: Session, bank_code: str, now: datetime) -> BankRateLimit:
    insert_if_absent(
        session,
        BankRateLimit.__table__,
        {"bank_code": bank_code, "sends": "[]", "day": now.astimezone(SHANGHAI).date(), "day_count": 0},
    )
    row = session.scalar(
        select(BankRateLimit)
        .where(BankRateLimit.bank_code == bank_code)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None, "window row inserted above"
    return row


def _store(row: BankRateLimit, state: WindowState) -> None:
    row.sends = json.dumps([[s.ticket, s.started_ms, s.answered_ms, s.bank_ms] for s in state.sends])
    assert state.day is not None
    row.day, row.day_count = state.day, state.day_count
    row.offset_ms, row.offset_at_ms = state.offset_ms, state.offset_at_ms


def start_send(session: Session, bank_code: str, limits: Limits, now: datetime, ticket: str) -> float:
    """0.0 when a send under `ticket` may start now (commit with the caller before sending), else the seconds
    to wait."""
    row = _locked(session, bank_code, now)
    state = window_state(row)
    wait_s = take(state, limits, now, ticket)
    if wait_s == 0.0:
        _store(row, state)
    return wait_s


def send_answered(
    session: Session, bank_code: str, ticket: str, now: datetime, bank_stamp: datetime | None = None
) -> None:
    """The bank's answer to `ticket` came back now (whatever it said), with the bank's stamp of the request when
    the answer carried one."""
    row = _locked(session, bank_code, now)
    state = window_state(row)
    answered(state, ticket, now, bank_stamp)
    _store(row, state)


def send_refused(session: Session, bank_code: str, limits: Limits, now: datetime) -> None:
    """The bank refused a send as over its limit: every place counts as used from now."""
    row = _locked(session, bank_code, now)
    state = window_state(row)
    refused(state, limits, now)
    _store(row, state)
